//! `GET /metrics`: Prometheus text with vLLM 0.32's metric names, labels
//! (`engine="0",model_name="..."`), HELP texts and histogram buckets, as
//! recorded from a real server (tests/data/metrics_sample.txt).

use std::fmt::Write as _;
use std::sync::Mutex;

use crate::engine::{EngineStats, ITERATION_BUCKETS};

const LATENCY_LONG: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];
const TTFT: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
const ITL: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];

#[derive(Debug, Clone)]
struct Histogram {
    bounds: Vec<f64>,
    counts: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Histogram {
    fn new(bounds: &[f64]) -> Self {
        Self {
            bounds: bounds.to_vec(),
            counts: vec![0; bounds.len()],
            count: 0,
            sum: 0.0,
        }
    }
    fn observe(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        for (i, b) in self.bounds.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
    }
}

/// vLLM's 1-2-5 token buckets up to max_model_len.
fn token_buckets(max: usize) -> Vec<f64> {
    let mut out = Vec::new();
    let mut base = 1usize;
    'outer: loop {
        for m in [1, 2, 5] {
            let v = base * m;
            if v > max {
                break 'outer;
            }
            out.push(v as f64);
        }
        base *= 10;
    }
    out
}

#[derive(Debug)]
struct Inner {
    ttft: Histogram,
    itl: Histogram,
    e2e: Histogram,
    queue: Histogram,
    prefill: Histogram,
    decode: Histogram,
    inference: Histogram,
    tpot: Histogram,
    prompt_hist: Histogram,
    gen_hist: Histogram,
    prompt_tokens: u64,
    cached_tokens: u64,
    generation_tokens: u64,
    success: [(&'static str, u64); 5],
}

/// One finished request's measurements, in seconds and tokens.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    pub ttft: Option<f64>,
    pub itls: Vec<f64>,
    pub e2e: f64,
    pub queue: f64,
    pub prefill: f64,
    pub decode: f64,
    pub prompt_tokens: usize,
    pub cached_tokens: usize,
    pub generation_tokens: usize,
    pub finish_reason: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    inner: Mutex<Inner>,
    model: String,
    cache_info: String,
    /// With prefix caching off the prefix-cache counters stay at 0.
    pub prefix_caching: bool,
}

impl Metrics {
    pub fn new(model: &str, max_model_len: usize, cache_info: String) -> Self {
        let tokens = token_buckets(max_model_len);
        Self {
            inner: Mutex::new(Inner {
                ttft: Histogram::new(TTFT),
                itl: Histogram::new(ITL),
                e2e: Histogram::new(LATENCY_LONG),
                queue: Histogram::new(LATENCY_LONG),
                prefill: Histogram::new(LATENCY_LONG),
                decode: Histogram::new(LATENCY_LONG),
                inference: Histogram::new(LATENCY_LONG),
                tpot: Histogram::new(ITL),
                prompt_hist: Histogram::new(&tokens),
                gen_hist: Histogram::new(&tokens),
                prompt_tokens: 0,
                cached_tokens: 0,
                generation_tokens: 0,
                success: [
                    ("stop", 0),
                    ("length", 0),
                    ("abort", 0),
                    ("error", 0),
                    ("repetition", 0),
                ],
            }),
            model: model.to_owned(),
            cache_info,
            prefix_caching: true,
        }
    }

    pub fn record(&self, f: &Finished) {
        let Ok(mut m) = self.inner.lock() else { return };
        if let Some(t) = f.ttft {
            m.ttft.observe(t);
        }
        for g in &f.itls {
            m.itl.observe(*g);
        }
        m.e2e.observe(f.e2e);
        m.queue.observe(f.queue);
        m.prefill.observe(f.prefill);
        m.decode.observe(f.decode);
        m.inference.observe(f.prefill + f.decode);
        if f.generation_tokens > 1 {
            m.tpot.observe(f.decode / (f.generation_tokens - 1) as f64);
        }
        m.prompt_hist.observe(f.prompt_tokens as f64);
        m.gen_hist.observe(f.generation_tokens as f64);
        m.prompt_tokens += f.prompt_tokens as u64;
        m.cached_tokens += f.cached_tokens as u64;
        m.generation_tokens += f.generation_tokens as u64;
        let reason = match f.finish_reason {
            "tool_calls" => "stop",
            r => r,
        };
        for (name, count) in m.success.iter_mut() {
            if *name == reason {
                *count += 1;
            }
        }
    }

    /// The Prometheus text.
    pub fn render(&self, engine: &EngineStats) -> String {
        let labels = format!("engine=\"0\",model_name=\"{}\"", self.model);
        let mut out = String::with_capacity(16 * 1024);
        let Ok(m) = self.inner.lock() else { return out };
        let gauge = |out: &mut String, name: &str, help: &str, v: f64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{{labels}}} {}",
                fmt(v)
            );
        };
        gauge(
            &mut out,
            "vllm:num_requests_running",
            "Number of requests in model execution batches.",
            engine.running as f64,
        );
        gauge(
            &mut out,
            "vllm:num_requests_waiting",
            "Number of requests waiting to be processed.",
            engine.waiting as f64,
        );
        gauge(
            &mut out,
            "vllm:kv_cache_usage_perc",
            "KV-cache usage. 1 means 100 percent usage.",
            engine.kv_usage,
        );
        let counter = |out: &mut String, name: &str, help: &str, v: f64| {
            let _ = writeln!(
                out,
                "# HELP {name}_total {help}\n# TYPE {name}_total counter\n{name}_total{{{labels}}} {}",
                fmt(v)
            );
        };
        counter(
            &mut out,
            "vllm:prefix_cache_queries",
            "Prefix cache queries, in terms of number of queried tokens.",
            if self.prefix_caching {
                m.prompt_tokens as f64
            } else {
                0.0
            },
        );
        counter(
            &mut out,
            "vllm:prefix_cache_hits",
            "Prefix cache hits, in terms of number of cached tokens.",
            if self.prefix_caching {
                m.cached_tokens as f64
            } else {
                0.0
            },
        );
        counter(
            &mut out,
            "vllm:num_preemptions",
            "Cumulative number of preemption from the engine.",
            engine.preemptions as f64,
        );
        counter(
            &mut out,
            "vllm:prompt_tokens",
            "Number of prefill tokens processed.",
            m.prompt_tokens as f64,
        );
        let _ = writeln!(
            out,
            "# HELP vllm:prompt_tokens_by_source_total Number of prompt tokens by source.\n# TYPE vllm:prompt_tokens_by_source_total counter"
        );
        for (source, v) in [
            (
                "local_compute",
                m.prompt_tokens.saturating_sub(m.cached_tokens),
            ),
            ("local_cache_hit", m.cached_tokens),
            ("external_kv_transfer", 0),
        ] {
            let _ = writeln!(
                out,
                "vllm:prompt_tokens_by_source_total{{{labels},source=\"{source}\"}} {}",
                fmt(v as f64)
            );
        }
        counter(
            &mut out,
            "vllm:prompt_tokens_cached",
            "Number of cached prompt tokens (local + external).",
            m.cached_tokens as f64,
        );
        counter(
            &mut out,
            "vllm:generation_tokens",
            "Number of generation tokens processed.",
            m.generation_tokens as f64,
        );
        let _ = writeln!(
            out,
            "# HELP vllm:request_success_total Count of successfully processed requests.\n# TYPE vllm:request_success_total counter"
        );
        for (reason, v) in m.success {
            let _ = writeln!(
                out,
                "vllm:request_success_total{{engine=\"0\",finished_reason=\"{reason}\",model_name=\"{}\"}} {}",
                self.model,
                fmt(v as f64)
            );
        }
        let hist = |out: &mut String, name: &str, help: &str, h: &Histogram| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            for (b, c) in h.bounds.iter().zip(&h.counts) {
                let _ = writeln!(
                    out,
                    "{name}_bucket{{engine=\"0\",le=\"{}\",model_name=\"{}\"}} {}",
                    fmt(*b),
                    self.model,
                    fmt(*c as f64)
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{engine=\"0\",le=\"+Inf\",model_name=\"{}\"}} {}",
                self.model,
                fmt(h.count as f64)
            );
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", fmt(h.count as f64));
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
        };
        hist(
            &mut out,
            "vllm:request_prompt_tokens",
            "Number of prefill tokens processed.",
            &m.prompt_hist,
        );
        hist(
            &mut out,
            "vllm:request_generation_tokens",
            "Number of generation tokens processed.",
            &m.gen_hist,
        );
        let mut iter = Histogram::new(
            &ITERATION_BUCKETS
                .iter()
                .map(|b| *b as f64)
                .collect::<Vec<_>>(),
        );
        if let Some((first, rest)) = engine.iteration_tokens.split_first() {
            iter.count = first.0;
            iter.sum = first.1 as f64;
            for (i, (c, _)) in rest.iter().enumerate() {
                iter.counts[i] = *c;
            }
        }
        hist(
            &mut out,
            "vllm:iteration_tokens_total",
            "Histogram of number of tokens per engine_step.",
            &iter,
        );
        hist(
            &mut out,
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            &m.ttft,
        );
        hist(
            &mut out,
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            &m.itl,
        );
        hist(
            &mut out,
            "vllm:request_time_per_output_token_seconds",
            "Histogram of time_per_output_token_seconds per request.",
            &m.tpot,
        );
        hist(
            &mut out,
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            &m.e2e,
        );
        hist(
            &mut out,
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            &m.queue,
        );
        hist(
            &mut out,
            "vllm:request_inference_time_seconds",
            "Histogram of time spent in RUNNING phase for request.",
            &m.inference,
        );
        hist(
            &mut out,
            "vllm:request_prefill_time_seconds",
            "Histogram of time spent in PREFILL phase for request.",
            &m.prefill,
        );
        hist(
            &mut out,
            "vllm:request_decode_time_seconds",
            "Histogram of time spent in DECODE phase for request.",
            &m.decode,
        );
        let _ = writeln!(
            out,
            "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig\n# TYPE vllm:cache_config_info gauge\nvllm:cache_config_info{{{}}} 1.0",
            self.cache_info
        );
        out
    }
}

/// Prometheus float formatting as Python's prometheus_client writes it.
fn fmt(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}
