//! The Jobs REST client: one method per endpoint the executor uses.

use std::time::Duration;

use reqwest::{Method, Url};
use serde::de::DeserializeOwned;

use crate::api::{JobDetails, JobType, LogsReply, StopReply, SubmitReply, VersionReply};
use crate::error::{InvalidAddress, RayError, RequestError, detail_of};
use crate::package::Package;
use crate::spec::{JobSpec, RUN_KEY, SubmissionId, UnitMetadata};

/// Timeouts of the client's requests.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    /// For every request but uploads.
    pub request_timeout: Duration,
    /// For a package upload (a binary of a few hundred MB to a remote head).
    pub upload_timeout: Duration,
    /// How long `submit` retries Ray's "No available agent to submit job,
    /// please try again later." (a 500 the head answers when its job agent
    /// is not up within 10 s, as on a fresh head on a loaded machine; the
    /// job was not created, so retrying cannot submit it twice).
    pub agent_wait: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            // A head's first submit waits for its job agent (3 s measured).
            request_timeout: Duration::from_secs(60),
            upload_timeout: Duration::from_secs(600),
            agent_wait: Duration::from_secs(120),
        }
    }
}

/// A Ray dashboard's Jobs API.
#[derive(Debug, Clone)]
pub struct RayClient {
    base: Url,
    /// `base` as the user gave it, for messages.
    address: String,
    http: reqwest::Client,
    options: ClientOptions,
}

/// Whether `upload_package` sent the package or found it on the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    Sent,
    AlreadyThere,
}

impl RayClient {
    /// A client of the dashboard at `address` (`http://HOST:PORT`).
    pub fn new(address: &str, options: ClientOptions) -> Result<Self, InvalidAddress> {
        let invalid = || InvalidAddress(address.to_string());
        let base = Url::parse(address).map_err(|_| invalid())?;
        let plain = matches!(base.scheme(), "http" | "https")
            && base.host_str().is_some()
            && (base.path() == "/" || base.path().is_empty())
            && base.query().is_none()
            && base.username().is_empty();
        if !plain {
            return Err(invalid());
        }
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .build()
            .map_err(|_| invalid())?;
        Ok(Self {
            address: base.as_str().trim_end_matches('/').to_string(),
            base,
            http,
            options,
        })
    }

    /// The address, as messages show it.
    pub fn address(&self) -> &str {
        &self.address
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        url.set_path(path);
        url
    }

    /// Sends a request and returns the body of a 2xx reply.
    async fn send(
        &self,
        method: Method,
        path: &str,
        build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<String, RequestError> {
        let request = build(self.http.request(method, self.url(path)));
        let reply = request.send().await.map_err(RequestError::Unreachable)?;
        let status = reply.status();
        let body = reply.text().await.map_err(RequestError::Unreachable)?;
        if !status.is_success() {
            return Err(RequestError::Status {
                status,
                detail: detail_of(&body),
            });
        }
        Ok(body)
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, RequestError> {
        let body = self.send(Method::GET, path, |r| r).await?;
        serde_json::from_str(&body).map_err(RequestError::Decode)
    }

    /// `GET /api/version`: whether a dashboard answers, and which Ray.
    pub async fn version(&self) -> Result<VersionReply, RayError> {
        self.get_json("/api/version")
            .await
            .map_err(|cause| RayError::Version {
                address: self.address.clone(),
                cause,
            })
    }

    /// `POST /api/jobs/`.
    pub async fn submit(&self, spec: &JobSpec) -> Result<SubmissionId, RayError> {
        let error = |cause| RayError::Submit {
            address: self.address.clone(),
            submission_id: spec.submission_id.to_string(),
            cause,
        };
        let body = spec.body();
        let deadline = tokio::time::Instant::now() + self.options.agent_wait;
        let text = loop {
            match self
                .send(Method::POST, "/api/jobs/", |r| r.json(&body))
                .await
            {
                Err(cause)
                    if cause.is_agent_unavailable() && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                reply => break reply.map_err(error)?,
            }
        };
        let reply: SubmitReply = serde_json::from_str(&text)
            .map_err(RequestError::Decode)
            .map_err(error)?;
        // Ray echoes the ID it was given; one it made up would be a head
        // that ignored ours.
        Ok(SubmissionId::new(&reply.submission_id).unwrap_or_else(|_| spec.submission_id.clone()))
    }

    /// `GET /api/jobs/{id}`.
    pub async fn status(&self, id: &SubmissionId) -> Result<JobDetails, RayError> {
        self.get_json(&format!("/api/jobs/{id}"))
            .await
            .map_err(|cause| RayError::Status {
                address: self.address.clone(),
                submission_id: id.to_string(),
                cause,
            })
    }

    /// `GET /api/jobs/{id}/logs`: the whole driver log (Ray has no tail
    /// parameter; see [`tail`]).
    pub async fn logs(&self, id: &SubmissionId) -> Result<String, RayError> {
        self.get_json::<LogsReply>(&format!("/api/jobs/{id}/logs"))
            .await
            .map(|reply| reply.logs)
            .map_err(|cause| RayError::Logs {
                address: self.address.clone(),
                submission_id: id.to_string(),
                cause,
            })
    }

    /// The last `lines` lines of the job's log.
    pub async fn logs_tail(&self, id: &SubmissionId, lines: usize) -> Result<String, RayError> {
        Ok(tail(&self.logs(id).await?, lines))
    }

    /// `POST /api/jobs/{id}/stop`: `true` when Ray signalled a running
    /// supervisor. A PENDING job that cannot be scheduled stays PENDING
    /// after this (shared/ray-reference.md).
    pub async fn stop(&self, id: &SubmissionId) -> Result<bool, RayError> {
        let error = |cause| RayError::Stop {
            address: self.address.clone(),
            submission_id: id.to_string(),
            cause,
        };
        let text = self
            .send(Method::POST, &format!("/api/jobs/{id}/stop"), |r| r)
            .await
            .map_err(error)?;
        let reply: StopReply = serde_json::from_str(&text)
            .map_err(RequestError::Decode)
            .map_err(error)?;
        Ok(reply.stopped)
    }

    /// `GET /api/jobs/`: every job the head knows, drivers included.
    pub async fn list(&self) -> Result<Vec<JobDetails>, RayError> {
        self.get_json("/api/jobs/")
            .await
            .map_err(|cause| RayError::List {
                address: self.address.clone(),
                cause,
            })
    }

    /// The submission jobs of one run, with the unit each carries (Ray
    /// cannot filter: this lists all and keeps ours).
    pub async fn list_run(
        &self,
        run_id: &str,
    ) -> Result<Vec<(UnitMetadata, SubmissionId, JobDetails)>, RayError> {
        Ok(of_run(self.list().await?, run_id))
    }

    /// Uploads a package unless the head has it. The check
    /// (`GET /api/packages/gcs/<name>`) also pins the package on the head
    /// for 10 minutes, so it is not collected before a job names it.
    /// The GPUs of the cluster's alive nodes (state API `GET /api/v0/nodes`,
    /// `resources_total.GPU`): what caps the jobs an executor keeps in flight.
    pub async fn cluster_gpus(&self) -> Result<ClusterGpus, RayError> {
        let reply: serde_json::Value =
            self.get_json("/api/v0/nodes")
                .await
                .map_err(|cause| RayError::Nodes {
                    address: self.address.clone(),
                    cause,
                })?;
        Ok(ClusterGpus::of_nodes(&reply))
    }

    pub async fn upload_package(&self, package: &Package) -> Result<Upload, RayError> {
        let path = format!("/api/packages/gcs/{}", package.uri.name());
        match self.send(Method::GET, &path, |r| r).await {
            Ok(_) => return Ok(Upload::AlreadyThere),
            Err(cause) if cause.is_not_found() => {}
            Err(cause) => {
                return Err(RayError::PackageCheck {
                    address: self.address.clone(),
                    uri: package.uri.to_string(),
                    cause,
                });
            }
        }
        let bytes = package.zip.clone();
        let timeout = self.options.upload_timeout;
        self.send(Method::PUT, &path, |r| {
            r.timeout(timeout)
                .header(reqwest::header::CONTENT_TYPE, "application/zip")
                .body(bytes)
        })
        .await
        .map_err(|cause| RayError::PackageUpload {
            address: self.address.clone(),
            uri: package.uri.to_string(),
            cause,
        })?;
        Ok(Upload::Sent)
    }
}

/// The submission jobs among `jobs` whose metadata names `run_id`.
/// GPUs over a cluster's alive nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClusterGpus {
    /// Whole GPUs over every alive node.
    pub total: u32,
    /// The most GPUs one node has: a job asking for more never starts.
    pub largest_node: u32,
}

impl ClusterGpus {
    /// From the state API's reply (`data.result.result[]` with `state` and
    /// `resources_total`); fractional GPUs round down.
    pub fn of_nodes(reply: &serde_json::Value) -> ClusterGpus {
        let nodes = reply
            .pointer("/data/result/result")
            .and_then(serde_json::Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut gpus = ClusterGpus::default();
        for node in nodes {
            if node.get("state").and_then(serde_json::Value::as_str) != Some("ALIVE") {
                continue;
            }
            let count = node
                .pointer("/resources_total/GPU")
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(0.0);
            // A count is a small non-negative number; the cast saturates.
            let count = count.max(0.0).floor() as u32;
            gpus.total = gpus.total.saturating_add(count);
            gpus.largest_node = gpus.largest_node.max(count);
        }
        gpus
    }
}

pub fn of_run(
    jobs: Vec<JobDetails>,
    run_id: &str,
) -> Vec<(UnitMetadata, SubmissionId, JobDetails)> {
    jobs.into_iter()
        .filter(|job| job.job_type == JobType::Submission)
        .filter(|job| {
            job.metadata
                .as_ref()
                .and_then(|m| m.get(RUN_KEY))
                .is_some_and(|run| run == run_id)
        })
        .filter_map(|job| {
            let unit = UnitMetadata::from_map(job.metadata.as_ref()?)?;
            let id = SubmissionId::new(job.submission_id.as_deref()?).ok()?;
            Some((unit, id, job))
        })
        .collect()
}

/// The last `lines` lines of `log` (all of it when shorter).
pub fn tail(log: &str, lines: usize) -> String {
    let trimmed = log.trim_end_matches('\n');
    let start = trimmed
        .rmatch_indices('\n')
        .nth(lines.saturating_sub(1))
        .map_or(0, |(at, _)| at + 1);
    if lines == 0 {
        return String::new();
    }
    trimmed[start..].to_string()
}
