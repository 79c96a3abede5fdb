//! GPU slots: disjoint sets of GPUs on this host, one server per slot, so
//! several configs run side by side. A slot gives its server the devices
//! (docker `device_requests`, `CUDA_VISIBLE_DEVICES` for a process), its
//! own container name (`<name>-slot<N>`) and its own host port.
//!
//! Parsed at the boundary: `0,1 2,3` (one argument per slot, devices
//! comma-separated), or `auto` (every GPU `nvidia-smi` lists, cut into
//! slots of the size a config needs). A device appears in one slot only.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The most slots a host is given (a 16-GPU box at one GPU a slot).
pub const MAX_SLOTS: usize = 64;

/// One slot: its index (0, 1, …: part of the container name and of the
/// host port's offset) and the GPUs its server sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuSlot {
    pub index: u32,
    /// Device IDs as `nvidia-smi` and Docker name them: an index (`0`) or
    /// a UUID (`GPU-…`).
    pub devices: Vec<String>,
}

impl GpuSlot {
    /// `CUDA_VISIBLE_DEVICES` for this slot's server.
    pub fn visible_devices(&self) -> String {
        self.devices.join(",")
    }

    /// The container name of a server on this slot: `medium-qwen3` on slot
    /// 1 is `medium-qwen3-slot1`.
    pub fn container_name(&self, base: &str) -> String {
        format!("{base}-slot{}", self.index)
    }

    /// The host port of a server on this slot when the profile publishes a
    /// fixed `port`: slot N takes `port + N`, so slots never collide; `None`
    /// when that is past 65535.
    pub fn host_port(&self, port: u16) -> Option<u16> {
        u16::try_from(u32::from(port) + self.index).ok()
    }
}

impl fmt::Display for GpuSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "slot{} (GPUs {})", self.index, self.visible_devices())
    }
}

/// What `--gpu-slots` (or the plan's `slots`) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotRequest {
    /// Every GPU `nvidia-smi` lists, cut into slots of TP × PP GPUs.
    Auto,
    /// These slots, as given.
    Given(Vec<GpuSlot>),
}

/// Why a slot list cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    #[error("no GPU slots given; name them, e.g. `--gpu-slots 0,1 2,3`, or use `auto`")]
    Empty,
    #[error(
        "GPU slot {slot} (`{text}`) names no device; write its GPUs comma-separated, e.g. `0,1`"
    )]
    EmptySlot { slot: usize, text: String },
    #[error("GPU slot {slot} names `{device}`, which is not a GPU index (`0`) or UUID (`GPU-…`)")]
    BadDevice { slot: usize, device: String },
    #[error("GPU {device} is in slot {first} and in slot {second}; a GPU belongs to one slot")]
    SharedDevice {
        device: String,
        first: usize,
        second: usize,
    },
    #[error("`auto` is a slot list on its own; give either `auto` or device lists")]
    AutoMixed,
    #[error("{count} GPU slots given; at most {MAX_SLOTS}")]
    TooMany { count: usize },
    #[error(
        "a slot of {per_slot} GPUs was asked for but this host lists {available} ({devices}); run fewer GPUs per config or name the slots"
    )]
    TooFewGpus {
        per_slot: usize,
        available: usize,
        devices: String,
    },
}

impl SlotRequest {
    /// Parses the words of `--gpu-slots` (`["0,1", "2,3"]`, `["auto"]`).
    pub fn parse<S: AsRef<str>>(words: &[S]) -> Result<SlotRequest, SlotError> {
        let words: Vec<&str> = words
            .iter()
            .flat_map(|w| w.as_ref().split_whitespace())
            .collect();
        match words.as_slice() {
            [] => Err(SlotError::Empty),
            ["auto"] => Ok(SlotRequest::Auto),
            _ if words.contains(&"auto") => Err(SlotError::AutoMixed),
            _ => parse_slots(&words).map(SlotRequest::Given),
        }
    }
}

fn parse_slots(words: &[&str]) -> Result<Vec<GpuSlot>, SlotError> {
    if words.len() > MAX_SLOTS {
        return Err(SlotError::TooMany { count: words.len() });
    }
    let mut slots: Vec<GpuSlot> = Vec::with_capacity(words.len());
    for (slot, text) in words.iter().enumerate() {
        let devices: Vec<String> = text
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect();
        if devices.is_empty() {
            return Err(SlotError::EmptySlot {
                slot,
                text: (*text).to_string(),
            });
        }
        for device in &devices {
            if !is_device_id(device) {
                return Err(SlotError::BadDevice {
                    slot,
                    device: device.clone(),
                });
            }
            let earlier = slots
                .iter()
                .position(|s| s.devices.contains(device))
                .or_else(|| {
                    // Twice in this slot.
                    (devices.iter().filter(|d| *d == device).count() > 1).then_some(slot)
                });
            if let Some(first) = earlier {
                return Err(SlotError::SharedDevice {
                    device: device.clone(),
                    first,
                    second: slot,
                });
            }
        }
        slots.push(GpuSlot {
            index: u32::try_from(slot).unwrap_or(u32::MAX),
            devices,
        });
    }
    Ok(slots)
}

/// A GPU index (`3`) or UUID (`GPU-8f…`, `MIG-…`): what Docker's device
/// IDs and `CUDA_VISIBLE_DEVICES` accept.
fn is_device_id(text: &str) -> bool {
    text.chars().all(|c| c.is_ascii_digit())
        || ((text.starts_with("GPU-") || text.starts_with("MIG-"))
            && text[4..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '/'))
}

/// `auto`: the host's GPUs, in `nvidia-smi`'s order, cut into slots of
/// `per_slot`; GPUs left over (7 GPUs at 2 a slot) stay unused.
pub fn slots_from_devices(devices: &[String], per_slot: usize) -> Result<Vec<GpuSlot>, SlotError> {
    let per_slot = per_slot.max(1);
    if devices.len() < per_slot {
        return Err(SlotError::TooFewGpus {
            per_slot,
            available: devices.len(),
            devices: if devices.is_empty() {
                "none".to_string()
            } else {
                devices.join(",")
            },
        });
    }
    Ok(devices
        .chunks_exact(per_slot)
        .take(MAX_SLOTS)
        .enumerate()
        .map(|(index, chunk)| GpuSlot {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            devices: chunk.to_vec(),
        })
        .collect())
}

/// `nvidia-smi` could not list the host's GPUs.
#[derive(Debug, thiserror::Error)]
pub enum GpuListError {
    #[error(
        "`--gpu-slots auto` needs nvidia-smi, which could not be run; name the slots instead, e.g. `--gpu-slots 0,1 2,3`"
    )]
    Run {
        #[source]
        source: std::io::Error,
    },
    #[error("nvidia-smi failed listing the GPUs (exit {code:?}): {stderr}")]
    Failed { code: Option<i32>, stderr: String },
}

/// The host's GPU indices, from `nvidia-smi --query-gpu=index`.
pub fn list_gpus() -> Result<Vec<String>, GpuListError> {
    let output = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=index", "--format=csv,noheader"])
        .output()
        .map_err(|source| GpuListError::Run { source })?;
    if !output.status.success() {
        return Err(GpuListError::Failed {
            code: output.status.code(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(list: &[&[&str]]) -> Result<SlotRequest, SlotError> {
        Ok(SlotRequest::Given(
            list.iter()
                .enumerate()
                .map(|(index, devices)| GpuSlot {
                    index: index as u32,
                    devices: devices.iter().map(|d| d.to_string()).collect(),
                })
                .collect(),
        ))
    }

    #[test]
    fn slot_lists_are_parsed_at_the_boundary() {
        grid_core::testing::check(
            &[
                (
                    "two pairs",
                    vec!["0,1", "2,3"],
                    slots(&[&["0", "1"], &["2", "3"]]),
                ),
                (
                    "one word, spaces",
                    vec!["0,1 2,3"],
                    slots(&[&["0", "1"], &["2", "3"]]),
                ),
                ("single GPUs", vec!["4", "5"], slots(&[&["4"], &["5"]])),
                ("uuid", vec!["GPU-8f2a-11"], slots(&[&["GPU-8f2a-11"]])),
                ("auto", vec!["auto"], Ok(SlotRequest::Auto)),
                ("nothing", vec![], Err(SlotError::Empty)),
                ("auto mixed", vec!["auto", "0"], Err(SlotError::AutoMixed)),
                (
                    "empty slot",
                    vec!["0,1", ","],
                    Err(SlotError::EmptySlot {
                        slot: 1,
                        text: ",".into(),
                    }),
                ),
                (
                    "not a device",
                    vec!["0,x"],
                    Err(SlotError::BadDevice {
                        slot: 0,
                        device: "x".into(),
                    }),
                ),
                (
                    "negative",
                    vec!["-1"],
                    Err(SlotError::BadDevice {
                        slot: 0,
                        device: "-1".into(),
                    }),
                ),
                (
                    "shared between slots",
                    vec!["0,1", "1,2"],
                    Err(SlotError::SharedDevice {
                        device: "1".into(),
                        first: 0,
                        second: 1,
                    }),
                ),
                (
                    "twice in one slot",
                    vec!["0,0"],
                    Err(SlotError::SharedDevice {
                        device: "0".into(),
                        first: 0,
                        second: 0,
                    }),
                ),
            ],
            |words: &Vec<&str>| SlotRequest::parse(words),
        );
    }

    #[test]
    fn auto_cuts_the_hosts_gpus_into_slots() {
        let gpus = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>();
        let given = |r: Result<SlotRequest, SlotError>| match r {
            Ok(SlotRequest::Given(s)) => Ok(s),
            Ok(SlotRequest::Auto) => Ok(Vec::new()),
            Err(e) => Err(e),
        };
        grid_core::testing::check(
            &[
                (
                    "four at two",
                    (4, 2),
                    given(slots(&[&["0", "1"], &["2", "3"]])),
                ),
                (
                    "seven at two",
                    (7, 2),
                    given(slots(&[&["0", "1"], &["2", "3"], &["4", "5"]])),
                ),
                ("one at one", (1, 1), given(slots(&[&["0"]]))),
                (
                    "too few",
                    (1, 2),
                    Err(SlotError::TooFewGpus {
                        per_slot: 2,
                        available: 1,
                        devices: "0".into(),
                    }),
                ),
            ],
            |(n, per): &(usize, usize)| slots_from_devices(&gpus(*n), *per),
        );
    }

    #[test]
    fn a_slot_names_its_container_and_offsets_its_port() {
        let slot = GpuSlot {
            index: 1,
            devices: vec!["2".into(), "3".into()],
        };
        assert_eq!(slot.container_name("medium-qwen3"), "medium-qwen3-slot1");
        assert_eq!(slot.host_port(5002), Some(5003));
        assert_eq!(slot.host_port(65535), None);
        assert_eq!(slot.visible_devices(), "2,3");
    }
}
