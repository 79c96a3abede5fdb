//! The machine the server runs on: its GPUs' memory (from `nvidia-smi`, or
//! declared by the profile), or for vLLM's CPU build the memory node it
//! allocates from (`/sys/devices/system/node/node0/meminfo`, clamped to a
//! cgroup limit as vLLM does).

/// One GPU's memory, in bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Gpu {
    /// `nvidia-smi`'s `name` (vLLM's batch defaults differ on A100s).
    pub name: Option<String>,
    pub total_bytes: u64,
    /// Held by other processes before the server starts.
    pub used_bytes: u64,
}

impl Gpu {
    pub fn free_bytes(&self) -> u64 {
        self.total_bytes.saturating_sub(self.used_bytes)
    }
}

/// A CPU memory node, as vLLM's CPU worker reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuMemory {
    /// `MemTotal`, clamped to the cgroup limit.
    pub total_bytes: u64,
    /// `MemFree + Active(file) + Inactive(file) + SReclaimable`, clamped to
    /// the cgroup's limit minus its usage.
    pub available_bytes: u64,
}

/// Where the server's memory comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Hardware {
    /// CUDA GPUs, in the order the server's workers use them (`cuda:0` first).
    Gpus(Vec<Gpu>),
    /// vLLM's CPU build: the KV cache lives in system RAM.
    Cpu(CpuMemory),
}

/// Why a meminfo text cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the memory node's meminfo has no `{key}` line in kB")]
pub struct MeminfoError {
    pub key: &'static str,
}

/// Reads `/sys/devices/system/node/node<N>/meminfo` text (`Node 0 MemTotal:
/// 24684084 kB`) or `/proc/meminfo` text (`MemTotal: 24684084 kB`), then
/// applies a cgroup limit and usage in bytes when there is one, as
/// `vllm/utils/cpu_resource_utils.py` `get_memory_node_info` does.
pub fn cpu_memory_from_meminfo(
    text: &str,
    cgroup_limit: Option<u64>,
    cgroup_usage: Option<u64>,
) -> Result<CpuMemory, MeminfoError> {
    let value = |key: &'static str| -> Result<u64, MeminfoError> {
        text.lines()
            .find_map(|line| {
                let mut words = line.split_whitespace().peekable();
                if words.peek() == Some(&"Node") {
                    words.next();
                    words.next();
                }
                let name = words.next()?.strip_suffix(':')?;
                if name != key {
                    return None;
                }
                let kb = words.next()?.parse::<u64>().ok()?;
                Some(kb * 1024)
            })
            .ok_or(MeminfoError { key })
    };
    let mut total = value("MemTotal")?;
    let mut available = value("MemFree")?
        + value("Active(file)")?
        + value("Inactive(file)")?
        + value("SReclaimable")?;
    if let Some(limit) = cgroup_limit.filter(|limit| *limit < total) {
        total = limit;
        available = available.min(limit.saturating_sub(cgroup_usage.unwrap_or(0)));
    }
    Ok(CpuMemory {
        total_bytes: total,
        available_bytes: available,
    })
}
