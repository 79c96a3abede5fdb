//! Walking the service keys that shape the server's runtime: ulimits, the
//! healthcheck, and GPU reservations (`deploy` and `gpus`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_yaml::Value;

use super::{Parser, key_string, scalar_string};
use crate::profile::error::ProfileError;
use crate::profile::parsers::parse_duration;
use crate::profile::types::{GpuRequest, Healthcheck, Ulimit};

impl Parser<'_> {
    pub(super) fn ulimits(&self, key: &str, value: &Value) -> Result<Vec<Ulimit>, ProfileError> {
        let Some(map) = value.as_mapping() else {
            return Err(self.invalid(
                key,
                "must be a mapping such as `nofile: {soft: 65536, hard: 65536}`",
            ));
        };
        let mut ulimits = Vec::new();
        for (name, limit) in map {
            let name = key_string(name);
            let path = format!("{key}.{name}");
            let (soft, hard) = match limit {
                Value::Number(n) => {
                    let n = n
                        .as_i64()
                        .ok_or_else(|| self.invalid(&path, "must be an integer"))?;
                    (n, n)
                }
                Value::Mapping(m) => {
                    let soft = m.get("soft").and_then(Value::as_i64);
                    let hard = m.get("hard").and_then(Value::as_i64);
                    match (soft, hard) {
                        (Some(s), Some(h)) => (s, h),
                        _ => return Err(self.invalid(&path, "needs integer `soft` and `hard`")),
                    }
                }
                _ => return Err(self.invalid(&path, "must be an integer or {soft, hard}")),
            };
            ulimits.push(Ulimit { name, soft, hard });
        }
        Ok(ulimits)
    }

    pub(super) fn healthcheck(
        &mut self,
        key: &str,
        value: &Value,
    ) -> Result<Option<Healthcheck>, ProfileError> {
        let Some(map) = value.as_mapping() else {
            return Err(self.invalid(key, "must be a mapping"));
        };
        let mut check = Healthcheck {
            test: Vec::new(),
            interval: None,
            timeout: None,
            retries: None,
            start_period: None,
        };
        for (name, value) in map {
            let name = key_string(name);
            let path = format!("{key}.{name}");
            let duration = |parser: &Self, value: &Value| -> Result<Duration, ProfileError> {
                let text = scalar_string(value).unwrap_or_default();
                parse_duration(&text).map_err(|source| ProfileError::Duration {
                    source_name: parser.source.clone(),
                    key: path.clone(),
                    source,
                })
            };
            match name.as_str() {
                "test" => {
                    check.test = match value {
                        Value::String(text) if text == "NONE" => vec!["NONE".to_string()],
                        Value::String(text) => vec!["CMD-SHELL".to_string(), text.clone()],
                        _ => self.words(&path, value)?,
                    }
                }
                "interval" => check.interval = Some(duration(self, value)?),
                "timeout" => check.timeout = Some(duration(self, value)?),
                "start_period" => check.start_period = Some(duration(self, value)?),
                "retries" => {
                    check.retries = Some(
                        value
                            .as_i64()
                            .ok_or_else(|| self.invalid(&path, "must be an integer"))?,
                    )
                }
                "disable" => {
                    if value.as_bool() == Some(true) {
                        check.test = vec!["NONE".to_string()];
                    }
                }
                _ => self.warn(format!("`{path}` is not supported and is ignored")),
            }
        }
        Ok(Some(check))
    }

    pub(super) fn deploy(
        &mut self,
        key: &str,
        value: &Value,
    ) -> Result<Vec<GpuRequest>, ProfileError> {
        let mut requests = Vec::new();
        let Some(deploy) = value.as_mapping() else {
            return Err(self.invalid(key, "must be a mapping"));
        };
        for (name, value) in deploy {
            let name = key_string(name);
            if name != "resources" {
                self.warn(format!("`{key}.{name}` is not supported and is ignored (only deploy.resources.reservations.devices is)"));
                continue;
            }
            let Some(resources) = value.as_mapping() else {
                continue;
            };
            for (resource_key, resource) in resources {
                let resource_key = key_string(resource_key);
                if resource_key != "reservations" {
                    self.warn(format!(
                        "`{key}.resources.{resource_key}` is not supported and is ignored"
                    ));
                    continue;
                }
                let Some(reservations) = resource.as_mapping() else {
                    continue;
                };
                for (reservation_key, reservation) in reservations {
                    let reservation_key = key_string(reservation_key);
                    let path = format!("{key}.resources.reservations.{reservation_key}");
                    if reservation_key != "devices" {
                        self.warn(format!("`{path}` is not supported and is ignored"));
                        continue;
                    }
                    let Some(devices) = reservation.as_sequence() else {
                        return Err(self.invalid(&path, "must be a list"));
                    };
                    for device in devices {
                        requests.push(self.device(&path, device)?);
                    }
                }
            }
        }
        Ok(requests)
    }

    fn device(&mut self, key: &str, value: &Value) -> Result<GpuRequest, ProfileError> {
        let Some(map) = value.as_mapping() else {
            return Err(self.invalid(key, "items must be mappings"));
        };
        let mut request = GpuRequest {
            driver: "nvidia".to_string(),
            count: None,
            device_ids: Vec::new(),
            capabilities: Vec::new(),
            options: BTreeMap::new(),
        };
        for (name, value) in map {
            let name = key_string(name);
            let path = format!("{key}[].{name}");
            match name.as_str() {
                "driver" => request.driver = scalar_string(value).unwrap_or_default(),
                "count" => {
                    request.count = Some(
                        parse_gpu_count(value)
                            .ok_or_else(|| self.invalid(&path, "must be a number or `all`"))?,
                    )
                }
                "device_ids" => {
                    request.device_ids = value
                        .as_sequence()
                        .ok_or_else(|| self.invalid(&path, "must be a list"))?
                        .iter()
                        .filter_map(scalar_string)
                        .collect()
                }
                "capabilities" => {
                    request.capabilities = value
                        .as_sequence()
                        .ok_or_else(|| self.invalid(&path, "must be a list"))?
                        .iter()
                        .filter_map(scalar_string)
                        .collect()
                }
                "options" => {
                    if let Some(options) = value.as_mapping() {
                        for (k, v) in options {
                            request
                                .options
                                .insert(key_string(k), scalar_string(v).unwrap_or_default());
                        }
                    }
                }
                _ => self.warn(format!("`{path}` is not supported and is ignored")),
            }
        }
        if request.count.is_some() && !request.device_ids.is_empty() {
            return Err(self.invalid(key, "sets both `count` and `device_ids`; keep one"));
        }
        if request.count.is_none() && request.device_ids.is_empty() {
            // `docker run --gpus` without a count means all of them.
            request.count = Some(-1);
        }
        if request.capabilities.is_empty() {
            request.capabilities.push("gpu".to_string());
        }
        Ok(request)
    }

    pub(super) fn gpus_shorthand(
        &self,
        key: &str,
        value: &Value,
    ) -> Result<GpuRequest, ProfileError> {
        let count =
            parse_gpu_count(value).ok_or_else(|| self.invalid(key, "must be `all` or a number"))?;
        Ok(GpuRequest {
            driver: "nvidia".to_string(),
            count: Some(count),
            device_ids: Vec::new(),
            capabilities: vec!["gpu".to_string()],
            options: BTreeMap::new(),
        })
    }
}

fn parse_gpu_count(value: &Value) -> Option<i64> {
    match value {
        Value::String(s) if s == "all" => Some(-1),
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}
