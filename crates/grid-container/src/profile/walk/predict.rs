//! `x-vllm-grid.predict`: the memory-model prediction's inputs that
//! vllm-grid cannot read on this host (hardware it cannot see, a model it
//! cannot read, calibrated overheads). Sizes are compose sizes (`24g`,
//! `0.5g`, `64k`, bytes); every value is checked here, naming its key.

use std::collections::BTreeMap;

use serde_yaml::{Mapping, Value};

use super::{Parser, key_string, scalar_string};
use crate::profile::error::ProfileError;
use crate::profile::parsers::parse_bytes;
use crate::profile::types::{DeclaredHardware, DeclaredModel, PredictHints};

const ROOT: &str = "x-vllm-grid.predict";

impl Parser<'_> {
    pub(super) fn predict_hints(
        &mut self,
        extensions: &BTreeMap<String, Value>,
    ) -> Result<PredictHints, ProfileError> {
        let mut hints = PredictHints::default();
        let Some(predict) = extensions
            .get("x-vllm-grid")
            .and_then(Value::as_mapping)
            .and_then(|grid| grid.get("predict"))
        else {
            return Ok(hints);
        };
        let predict = self.mapping(ROOT, predict)?;
        for (key, value) in predict {
            let key = key_string(key);
            let path = format!("{ROOT}.{key}");
            match key.as_str() {
                "hardware" => hints.hardware = Some(self.hardware(&path, value)?),
                "model" => hints.model = Some(self.declared_model(&path, value)?),
                "overheads" => self.overheads(&path, value, &mut hints.overheads)?,
                _ => self.warn(format!(
                    "`{path}` is not supported and is ignored (supported: hardware, model, overheads)"
                )),
            }
        }
        Ok(hints)
    }

    fn mapping<'v>(&self, key: &str, value: &'v Value) -> Result<&'v Mapping, ProfileError> {
        value
            .as_mapping()
            .ok_or_else(|| self.invalid(key, "must be a mapping"))
    }

    fn size(&self, key: &str, value: &Value) -> Result<u64, ProfileError> {
        let text = scalar_string(value)
            .ok_or_else(|| self.invalid(key, "must be a size such as 24g, 0.5g or 65536"))?;
        parse_bytes(&text)
            .map(|bytes| bytes as u64)
            .map_err(|source| ProfileError::Size {
                source_name: self.source.clone(),
                key: key.to_string(),
                source,
            })
    }

    fn hardware(&mut self, path: &str, value: &Value) -> Result<DeclaredHardware, ProfileError> {
        let map = self.mapping(path, value)?;
        let mut device = "gpu".to_string();
        let mut count = None;
        let mut name = None;
        let mut total = None;
        let mut used = 0;
        let mut memory_total = None;
        let mut memory_available = None;
        for (key, value) in map {
            let key = key_string(key);
            let at = format!("{path}.{key}");
            match key.as_str() {
                "device" => {
                    device = scalar_string(value)
                        .filter(|d| d == "gpu" || d == "cpu")
                        .ok_or_else(|| self.invalid(&at, "must be `gpu` or `cpu`"))?;
                }
                "gpus" => {
                    count = Some(value.as_u64().filter(|n| (1..=64).contains(n)).ok_or_else(
                        || self.invalid(&at, "must be a number of GPUs from 1 to 64"),
                    )?);
                }
                "gpu_name" => {
                    name = Some(
                        scalar_string(value)
                            .ok_or_else(|| self.invalid(&at, "must be a string"))?,
                    )
                }
                "gpu_memory" => total = Some(self.size(&at, value)?),
                "gpu_memory_used" => used = self.size(&at, value)?,
                "memory_total" => memory_total = Some(self.size(&at, value)?),
                "memory_available" => memory_available = Some(self.size(&at, value)?),
                _ => self.warn(format!("`{at}` is not supported and is ignored")),
            }
        }
        if device == "cpu" {
            return Ok(DeclaredHardware::Cpu {
                total_bytes: memory_total,
                available_bytes: memory_available,
            });
        }
        let total = total.ok_or_else(|| {
            self.invalid(
                path,
                "declares GPUs without `gpu_memory` (each GPU's total, e.g. 24g)",
            )
        })?;
        if used > total {
            return Err(self.invalid(
                &format!("{path}.gpu_memory_used"),
                "is more than `gpu_memory`",
            ));
        }
        let gpu = grid_predict::Gpu {
            name,
            total_bytes: total,
            used_bytes: used,
        };
        Ok(DeclaredHardware::Gpus(vec![
            gpu;
            count.unwrap_or(1) as usize
        ]))
    }

    fn declared_model(&mut self, path: &str, value: &Value) -> Result<DeclaredModel, ProfileError> {
        let map = self.mapping(path, value)?;
        let mut config = None;
        let mut weights = None;
        for (key, value) in map {
            let key = key_string(key);
            let at = format!("{path}.{key}");
            match key.as_str() {
                "config" => {
                    self.mapping(&at, value)?;
                    let json = serde_json::to_value(value).map_err(|e| {
                        self.invalid(&at, format!("cannot be read as config.json keys: {e}"))
                    })?;
                    // Check it the way the prediction will read it; a model
                    // the prediction does not cover is no profile error (its
                    // prediction is `unknown`), a missing key is.
                    match grid_predict::ModelFacts::from_config(&json, 0) {
                        Ok(_) | Err(grid_predict::ModelError::Unsupported { .. }) => {}
                        Err(e) => return Err(self.invalid(&at, e.to_string())),
                    }
                    config = Some(json);
                }
                "weights" => weights = Some(self.size(&at, value)?),
                _ => self.warn(format!("`{at}` is not supported and is ignored")),
            }
        }
        match (config, weights) {
            (Some(config), Some(weights_bytes)) => Ok(DeclaredModel {
                config,
                weights_bytes,
            }),
            _ => Err(self.invalid(
                path,
                "needs both `config` (config.json's keys) and `weights` (their size on disk, e.g. 18g)",
            )),
        }
    }

    fn overheads(
        &mut self,
        path: &str,
        value: &Value,
        overheads: &mut grid_predict::Overheads,
    ) -> Result<(), ProfileError> {
        let map = self.mapping(path, value)?;
        for (key, value) in map {
            let key = key_string(key);
            let at = format!("{path}.{key}");
            match key.as_str() {
                "non_torch" => overheads.non_torch_bytes = Some(self.size(&at, value)?),
                "cuda_graphs" => overheads.cuda_graph_bytes = Some(self.size(&at, value)?),
                "cpu_runtime" => overheads.cpu_runtime_bytes = Some(self.size(&at, value)?),
                "activation" => {
                    let line = self.mapping(&at, value)?;
                    let mut activation = grid_predict::LinearActivation {
                        fixed_bytes: 0,
                        per_batched_token_bytes: 0,
                    };
                    for (key, value) in line {
                        let key = key_string(key);
                        let at = format!("{at}.{key}");
                        match key.as_str() {
                            "fixed" => activation.fixed_bytes = self.size(&at, value)?,
                            "per_batched_token" => {
                                activation.per_batched_token_bytes = self.size(&at, value)?
                            }
                            _ => self.warn(format!("`{at}` is not supported and is ignored")),
                        }
                    }
                    overheads.activation = Some(activation);
                }
                _ => self.warn(format!("`{at}` is not supported and is ignored")),
            }
        }
        Ok(())
    }
}
