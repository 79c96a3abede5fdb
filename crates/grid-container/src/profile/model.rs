//! Where the server's model files are, seen from this host: the memory
//! prediction reads the model's `config.json` and weight sizes before the
//! server starts. The profile knows the paths: `--model` (a directory or a
//! hub repo id), `--download-dir`, the Hugging Face cache variables of the
//! server's environment (`HF_HUB_CACHE`, `HF_HOME`), and the bind mounts
//! that map container paths to host paths. Nothing is read here; the caller
//! tries the candidates in order.

use std::path::{Path, PathBuf};

use super::types::Profile;
use crate::interpolate::Expander;
use crate::render::flag_value;

/// The server's model and the host directories it may be in, best first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// `--model` names a directory: the directory itself (the process
    /// backend), or the host side of the bind mount holding it (docker).
    Directory {
        model: String,
        candidates: Vec<PathBuf>,
    },
    /// `--model` is a hub repo id: Hugging Face cache directories (the
    /// `hub` level, holding `models--ORG--NAME/`).
    Hub {
        repo_id: String,
        cache_dirs: Vec<PathBuf>,
    },
}

/// Where the official image's user keeps Hugging Face's cache.
const CONTAINER_HF_HOME: &str = "/root/.cache/huggingface";

impl Profile {
    /// The model of `command` (the profile's command, rendered or not) and
    /// where to look for it. References expand from `lookup` (the process
    /// environment); ones without a value expand to nothing, since a
    /// secret need not be set to predict. `None` when no model is named.
    pub fn model_source(
        &self,
        command: &[String],
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Option<ModelSource> {
        let expand = |text: &str| Expander::new(lookup).expand(text);
        let model = flag_value(command, "model")
            .or_else(|| command.first().filter(|t| !t.starts_with('-')).cloned())?;
        let model = expand(&model);
        if model.is_empty() {
            return None;
        }
        let home = lookup("HOME");
        let binds: Vec<(PathBuf, PathBuf)> = self
            .volumes
            .iter()
            .filter_map(|v| self.bind_pair(&expand(v), home.as_deref()))
            .collect();
        let to_host = |container: &Path| -> Option<PathBuf> {
            binds
                .iter()
                .filter(|(_, target)| container.starts_with(target))
                .max_by_key(|(_, target)| target.components().count())
                .map(|(source, target)| {
                    source.join(container.strip_prefix(target).unwrap_or(container))
                })
        };
        let tilde = |text: &str| -> PathBuf {
            match (text.strip_prefix('~'), home.as_deref()) {
                (Some(rest), Some(home)) => PathBuf::from(format!("{home}{rest}")),
                _ => PathBuf::from(text),
            }
        };
        let mut candidates: Vec<PathBuf> = Vec::new();
        let push = |path: PathBuf, list: &mut Vec<PathBuf>| {
            if !list.contains(&path) {
                list.push(path);
            }
        };
        let looks_like_path =
            model.starts_with('/') || model.starts_with('.') || model.starts_with('~');
        if looks_like_path {
            let path = tilde(&model);
            if let Some(host) = to_host(&path) {
                push(host, &mut candidates);
            }
            push(path, &mut candidates);
            return Some(ModelSource::Directory { model, candidates });
        }
        // The server's environment as the profile writes it (the process
        // backend passes the parent's environment too).
        let env = |name: &str| -> Option<String> {
            self.environment
                .iter()
                .find(|e| e.name == name)
                .and_then(|e| e.value.clone())
                .map(|v| expand(&v))
                .or_else(|| lookup(name))
                .filter(|v| !v.is_empty())
        };
        let mut dirs: Vec<PathBuf> = Vec::new();
        if let Some(dir) = flag_value(command, "download-dir").map(|d| expand(&d)) {
            dirs.push(tilde(&dir));
        }
        match (env("HF_HUB_CACHE"), env("HF_HOME")) {
            (Some(hub), _) => dirs.push(tilde(&hub)),
            (None, Some(hf_home)) => dirs.push(tilde(&hf_home).join("hub")),
            (None, None) => dirs.push(PathBuf::from(CONTAINER_HF_HOME).join("hub")),
        }
        for dir in &dirs {
            if let Some(host) = to_host(dir) {
                push(host, &mut candidates);
            }
            push(dir.clone(), &mut candidates);
        }
        if let Some(home) = &home {
            push(
                Path::new(home).join(".cache/huggingface/hub"),
                &mut candidates,
            );
        }
        Some(ModelSource::Hub {
            repo_id: model,
            cache_dirs: candidates,
        })
    }

    /// A bind mount's (host source, container target); `None` for named
    /// and anonymous volumes.
    fn bind_pair(&self, text: &str, home: Option<&str>) -> Option<(PathBuf, PathBuf)> {
        let mut parts = text.split(':');
        let source = parts.next()?;
        let target = parts.next()?;
        let source = if let Some(rest) = source.strip_prefix('~') {
            PathBuf::from(format!("{}{rest}", home?))
        } else if source.starts_with('.') {
            self.base_dir.join(source)
        } else if source.starts_with('/') {
            PathBuf::from(source)
        } else {
            return None;
        };
        Some((source, PathBuf::from(target)))
    }
}

/// `words` with every reference expanded from `lookup`; one without a
/// value expands to nothing (for reading flags before a launch, when a
/// secret need not be set). Never use the result to start a server.
pub fn expand_leniently(words: &[String], lookup: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    words
        .iter()
        .map(|w| Expander::new(lookup).expand(w))
        .collect()
}
