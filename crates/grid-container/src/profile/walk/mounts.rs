//! Walking `ports:` and `volumes:`, short and long syntax, into the short
//! syntax the profile keeps (unexpanded).

use serde_yaml::Value;

use super::{Parser, key_string, scalar_string};
use crate::profile::error::ProfileError;
use crate::profile::parsers::parse_port;

impl Parser<'_> {
    pub(super) fn ports(&mut self, key: &str, value: &Value) -> Result<Vec<String>, ProfileError> {
        let Some(items) = value.as_sequence() else {
            return Err(self.invalid(key, "must be a list"));
        };
        let mut ports = Vec::new();
        for item in items {
            let text = match item {
                Value::Mapping(map) => {
                    let get = |name: &str| map.get(name).and_then(scalar_string);
                    for (long_key, _) in map {
                        let long_key = key_string(long_key);
                        if ![
                            "target",
                            "published",
                            "host_ip",
                            "protocol",
                            "mode",
                            "name",
                            "app_protocol",
                        ]
                        .contains(&long_key.as_str())
                        {
                            self.warn(format!(
                                "`{key}[].{long_key}` is not supported and is ignored"
                            ));
                        }
                    }
                    let target = get("target")
                        .ok_or_else(|| self.invalid(key, "long syntax needs `target`"))?;
                    let mut text = String::new();
                    if let Some(ip) = get("host_ip") {
                        text.push_str(&ip);
                        text.push(':');
                    }
                    if let Some(published) = get("published") {
                        text.push_str(&published);
                        text.push(':');
                    } else if !text.is_empty() {
                        text.push(':');
                    }
                    text.push_str(&target);
                    if let Some(protocol) = get("protocol") {
                        text.push('/');
                        text.push_str(&protocol);
                    }
                    text
                }
                other => scalar_string(other)
                    .ok_or_else(|| self.invalid(key, "items must be strings"))?,
            };
            self.check_syntax(key, &text)?;
            if !text.contains('$') {
                parse_port(&text).map_err(|source| ProfileError::Port {
                    source_name: self.source.clone(),
                    key: key.to_string(),
                    source,
                })?;
            }
            ports.push(text);
        }
        Ok(ports)
    }

    pub(super) fn volumes(
        &mut self,
        key: &str,
        value: &Value,
    ) -> Result<Vec<String>, ProfileError> {
        let Some(items) = value.as_sequence() else {
            return Err(self.invalid(key, "must be a list"));
        };
        let mut volumes = Vec::new();
        for item in items {
            let text = match item {
                Value::Mapping(map) => {
                    let get = |name: &str| map.get(name).and_then(scalar_string);
                    let kind = get("type").unwrap_or_else(|| "volume".to_string());
                    if kind != "bind" && kind != "volume" {
                        self.warn(format!(
                            "`{key}[]` of type `{kind}` is not supported and is ignored"
                        ));
                        continue;
                    }
                    for (long_key, _) in map {
                        let long_key = key_string(long_key);
                        if !["type", "source", "target", "read_only"].contains(&long_key.as_str()) {
                            self.warn(format!(
                                "`{key}[].{long_key}` is not supported and is ignored"
                            ));
                        }
                    }
                    let target = get("target")
                        .ok_or_else(|| self.invalid(key, "long syntax needs `target`"))?;
                    let read_only = map
                        .get("read_only")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    let mut text = match get("source") {
                        Some(source) => format!("{source}:{target}"),
                        None => target,
                    };
                    if read_only {
                        text.push_str(":ro");
                    }
                    text
                }
                other => scalar_string(other)
                    .ok_or_else(|| self.invalid(key, "items must be strings"))?,
            };
            self.check_syntax(key, &text)?;
            volumes.push(text);
        }
        Ok(volumes)
    }
}
