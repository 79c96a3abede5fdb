//! The Ray executor: each unit (config × repeat) is a Ray job whose
//! entrypoint is `./vllm-grid worker` from the run's working-dir package,
//! with `entrypoint_num_gpus` = TP × PP (Ray sets the job's
//! `CUDA_VISIBLE_DEVICES`). The orchestrator follows the job's status,
//! reads the worker's result from the job's log (its last
//! `VLLM_GRID_RESULT <json>` line) and turns it into the unit's end; a
//! failed job is diagnosed (grid-ray's classes; a failed entrypoint
//! through the local diagnosis of its log tail). The run's jobs carry its
//! ID, the config and the repeat as metadata, so a resume finds them:
//! finished ones are adopted, running ones followed, failed ones
//! submitted again under the next attempt's ID (Ray refuses a second job
//! with the same ID, so a unit is never submitted twice under one).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use grid_container::{ExitInfo, FailureClass};
use grid_plan::PlannedConfig;
use grid_ray::{
    ClientOptions, JobDetails, JobFailure, JobFailureClass, JobOutcome, JobSpec, JobStatus,
    PackageUri, PublicEnv, RayClient, SubmissionId, UnitMetadata, diagnose,
};

use crate::SearchError;
use crate::progress::Phase;
use crate::search::context::RunContext;
use crate::search::deadline::{Deadline, sleep_unless};
use crate::search::failure::{failure_record, is_config_fault, plain_failure};
use crate::search::setup::config_gpus;
use crate::store::FailureRecord;

use super::Executor;
use super::ray_package::{BINARY, spec_path, upload};
use super::unit::{Unit, UnitEnd, UnitLog};
use super::unit_spec::{UnitEndRecord, UnitResult};

/// The line the worker prints its result on, for an executor that reads
/// the worker's output rather than its files.
pub const RESULT_LINE_PREFIX: &str = "VLLM_GRID_RESULT ";

/// Lines of a failed job's log kept in its failure record.
const TAIL_LINES: usize = 40;

/// Where and how to run on Ray (`--executor ray --ray-address URL`).
#[derive(Debug, Clone)]
pub struct RayTarget {
    /// The dashboard's address, `http://HOST:8265`.
    pub address: String,
    /// The `vllm-grid` binary the jobs run (the orchestrator's own).
    pub worker_binary: PathBuf,
    /// How often a job's status is read.
    pub poll: Duration,
}

/// How long a cluster without GPUs is given for its nodes to register.
const NODE_WAIT: Duration = Duration::from_secs(15);

/// How long a stopped job may take to reach a terminal status.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// A job of the run found on the cluster when the executor started.
struct Found {
    attempt: u32,
    id: SubmissionId,
    status: JobStatus,
}

pub(crate) struct RayExecutor {
    client: RayClient,
    uri: PackageUri,
    poll: Duration,
    /// Jobs in flight at most at once: the cluster's GPUs over the
    /// largest job's.
    lanes: usize,
    /// The run's jobs found at start, per unit, highest attempt last; a
    /// unit's entry is taken when the unit runs.
    found: Mutex<BTreeMap<(String, u32), Vec<Found>>>,
    /// Configs that had a result when the run opened: their old jobs are
    /// history (a rerun is a new attempt), never adopted.
    recorded: BTreeSet<String>,
}

impl RayExecutor {
    /// Connects, checks every config fits a node, uploads the package and
    /// lists the run's jobs.
    pub(crate) async fn connect(
        ctx: &RunContext<'_>,
        target: &RayTarget,
    ) -> Result<RayExecutor, SearchError> {
        let client = RayClient::new(&target.address, ClientOptions::default())
            .map_err(|source| SearchError::RayAddress { source })?;
        client
            .version()
            .await
            .map_err(|source| SearchError::RayCluster {
                source: Box::new(source),
            })?;
        // A head that has just started answers before its node registers.
        let registered = tokio::time::Instant::now();
        let gpus = loop {
            let gpus = client
                .cluster_gpus()
                .await
                .map_err(|source| SearchError::RayCluster {
                    source: Box::new(source),
                })?;
            if gpus.total > 0 || registered.elapsed() > NODE_WAIT {
                break gpus;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let mut largest_job = 1;
        for config in &ctx.setup.plan.configs {
            let needed = config_gpus(&ctx.setup.profile, config);
            if needed > gpus.largest_node {
                return Err(SearchError::RayTooFewGpus {
                    config: config.name.clone(),
                    needed,
                    largest: gpus.largest_node,
                    address: client.address().to_string(),
                });
            }
            largest_job = largest_job.max(needed);
        }
        let lanes = usize::try_from((gpus.total / largest_job).max(1)).unwrap_or(1);
        let uri = upload(ctx, &client, &target.worker_binary).await?;
        let mut found: BTreeMap<(String, u32), Vec<Found>> = BTreeMap::new();
        let jobs =
            client
                .list_run(&ctx.setup.run_id)
                .await
                .map_err(|source| SearchError::RayCluster {
                    source: Box::new(source),
                })?;
        for (unit, id, details) in jobs {
            let Some(attempt) = attempt_of(&id) else {
                continue;
            };
            found
                .entry((unit.config_id, unit.repeat))
                .or_default()
                .push(Found {
                    attempt,
                    id,
                    status: details.status,
                });
        }
        for jobs in found.values_mut() {
            jobs.sort_by_key(|job| job.attempt);
        }
        let recorded = ctx
            .store
            .read_results()?
            .into_keys()
            .map(|id| id.0)
            .collect();
        tracing::info!(address = %client.address(), gpus = gpus.total, lanes, found = found.len(), "Ray executor ready");
        Ok(RayExecutor {
            client,
            uri,
            poll: target.poll,
            lanes,
            found: Mutex::new(found),
            recorded,
        })
    }

    pub(crate) fn lanes(&self) -> usize {
        self.lanes
    }

    /// Stops the jobs of the run found at start that no unit took (a
    /// config that already had a result, one this invocation did not
    /// reach): none of the run's jobs is left running.
    pub(crate) async fn finish(&self) {
        let left: Vec<SubmissionId> = {
            let mut found = self.found.lock().unwrap_or_else(PoisonError::into_inner);
            std::mem::take(&mut *found)
                .into_values()
                .flatten()
                .filter(|job| !job.status.is_terminal())
                .map(|job| job.id)
                .collect()
        };
        for id in left {
            tracing::warn!(job = %id, "stopping a job of the run no config took");
            let _ = self.stop_and_wait(&id).await;
        }
    }

    /// What to do first for a unit: follow a job a previous invocation
    /// left (finished or running), or submit attempt N.
    fn start_of(&self, config: &PlannedConfig, repeat: u32) -> Start {
        let jobs = self
            .found
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(config.id.0.clone(), repeat))
            .unwrap_or_default();
        let next = jobs.last().map_or(0, |job| job.attempt + 1);
        let adoptable = |job: &Found| {
            matches!(
                job.status,
                JobStatus::Succeeded | JobStatus::Running | JobStatus::Pending
            )
        };
        match jobs.into_iter().last() {
            Some(job) if !self.recorded.contains(&config.id.0) && adoptable(&job) => {
                tracing::info!(job = %job.id, status = ?job.status, "adopting the job a previous invocation left");
                Start::Adopt {
                    id: job.id,
                    attempt: job.attempt,
                }
            }
            Some(job) if !job.status.is_terminal() => Start::StopThenSubmit {
                old: job.id,
                attempt: next,
            },
            _ => Start::Submit { attempt: next },
        }
    }

    async fn submit(
        &self,
        ctx: &RunContext<'_>,
        unit: &Unit<'_>,
        attempt: u32,
    ) -> Result<SubmissionId, SearchError> {
        let meta = UnitMetadata {
            run_id: ctx.setup.run_id.clone(),
            config_id: unit.config.id.0.clone(),
            repeat: unit.repeat,
        };
        let id = SubmissionId::for_unit(&meta, attempt);
        let spec = spec_path(unit.config, unit.repeat);
        let out = format!(
            "results/{}-r{}-a{attempt}.json",
            unit.config.id, unit.repeat
        );
        let job = JobSpec {
            submission_id: id.clone(),
            // The package's directory is the job's; its logs stay there.
            entrypoint: format!("./{BINARY} --logs-dir logs worker --spec {spec} --out {out}"),
            unit: meta,
            gpus: config_gpus(&ctx.setup.profile, unit.config),
            cpus: None,
            working_dir: Some(self.uri.clone()),
            // Nothing: the node's environment provides the profile's
            // variables, the API key's among them.
            env: PublicEnv::default(),
        };
        self.client
            .submit(&job)
            .await
            .map_err(|source| request_error(ctx, unit.config, source))?;
        tracing::info!(job = %id, config = %unit.config.name, repeat = unit.repeat, "Ray job submitted");
        Ok(id)
    }

    /// Follows a job to its end; `None`: the deadline or a cancel fired
    /// and the job was stopped.
    async fn follow(
        &self,
        ctx: &RunContext<'_>,
        config: &PlannedConfig,
        id: &SubmissionId,
        deadline: &Deadline,
    ) -> Result<Option<JobDetails>, SearchError> {
        let mut announced = false;
        loop {
            let details = self
                .client
                .status(id)
                .await
                .map_err(|source| request_error(ctx, config, source))?;
            if details.status.is_terminal() {
                return Ok(Some(details));
            }
            if details.status == JobStatus::Running && !announced {
                ctx.phase(config, Phase::RunningBattery);
                announced = true;
            }
            if !sleep_unless(deadline.token(), self.poll).await {
                self.stop_and_wait(id)
                    .await
                    .map_err(|source| request_error(ctx, config, source))?;
                return Ok(None);
            }
        }
    }

    async fn stop_and_wait(&self, id: &SubmissionId) -> Result<(), grid_ray::RayError> {
        self.client.stop(id).await?;
        let started = tokio::time::Instant::now();
        while started.elapsed() < STOP_WAIT {
            if self.client.status(id).await?.status.is_terminal() {
                return Ok(());
            }
            tokio::time::sleep(self.poll).await;
        }
        tracing::warn!(job = %id, "the stopped Ray job did not end in time");
        Ok(())
    }
}

enum Start {
    Adopt { id: SubmissionId, attempt: u32 },
    StopThenSubmit { old: SubmissionId, attempt: u32 },
    Submit { attempt: u32 },
}

/// What a finished job says about its unit.
enum JobEnd {
    Unit(Box<UnitEnd>),
    /// Not the config's fault and worth another attempt (a lost node, a
    /// runtime environment that failed to set up).
    Retry(FailureRecord),
}

impl Executor for RayExecutor {
    async fn run_unit(
        &self,
        ctx: &RunContext<'_>,
        unit: &Unit<'_>,
        deadline: &Deadline,
        log: &mut UnitLog,
    ) -> Result<UnitEnd, SearchError> {
        ctx.phase(unit.config, Phase::StartingServer);
        let (mut id, mut attempt) = match self.start_of(unit.config, unit.repeat) {
            Start::Adopt { id, attempt } => (id, attempt),
            Start::StopThenSubmit { old, attempt } => {
                self.stop_and_wait(&old)
                    .await
                    .map_err(|source| request_error(ctx, unit.config, source))?;
                (self.submit(ctx, unit, attempt).await?, attempt)
            }
            Start::Submit { attempt } => (self.submit(ctx, unit, attempt).await?, attempt),
        };
        let mut retries = 0;
        loop {
            let Some(details) = self.follow(ctx, unit.config, &id, deadline).await? else {
                return Ok(UnitEnd::CutShort);
            };
            let text = self
                .client
                .logs(&id)
                .await
                .map_err(|source| request_error(ctx, unit.config, source))?;
            let end = job_end(ctx, unit.config, &details, &text, log)?;
            let record = match end {
                JobEnd::Unit(end) => return Ok(*end),
                JobEnd::Retry(record) => record,
            };
            let limits = &ctx.setup.plan.limits;
            retries += 1;
            if deadline.is_cancelled() {
                return Ok(UnitEnd::CutShort);
            }
            if retries > limits.transient_retries.get() {
                return Ok(remote_unavailable(ctx, unit.config, record));
            }
            let backoff = limits.retry_backoff_after(retries);
            tracing::warn!(job = %id, class = %record.class, ?backoff, "the Ray job failed outside the config; retrying");
            log.failed_attempts.push(record);
            log.timing.backoff_s += backoff.as_secs_f64();
            if !sleep_unless(deadline.token(), backoff).await {
                return Ok(UnitEnd::CutShort);
            }
            attempt += 1;
            id = self.submit(ctx, unit, attempt).await?;
        }
    }
}

/// A finished job's end: the worker's result when it wrote one, else the
/// job's diagnosed failure.
fn job_end(
    ctx: &RunContext<'_>,
    config: &PlannedConfig,
    details: &JobDetails,
    text: &str,
    log: &mut UnitLog,
) -> Result<JobEnd, SearchError> {
    let failure = match diagnose(details, text, TAIL_LINES) {
        JobOutcome::Succeeded | JobOutcome::Unfinished(_) => match result_in(text) {
            Some(result) => return Ok(JobEnd::Unit(Box::new(adopt(ctx, config, result, log)?))),
            None => JobFailure {
                class: JobFailureClass::JobFailed,
                exit_code: details.driver_exit_code,
                reason: format!(
                    "the job ended {:?} without a `{}` line in its log",
                    details.status,
                    RESULT_LINE_PREFIX.trim_end()
                ),
                log_tail: grid_ray::tail(&grid_ray::entrypoint_output(text), TAIL_LINES),
            },
        },
        JobOutcome::Failed(failure) => failure,
    };
    let tail: Vec<String> = failure.log_tail.lines().map(str::to_string).collect();
    let class = failure.class.name();
    let record = |transient: bool| FailureRecord {
        class: format!("ray_{class}"),
        class_name: format!("ray {}", class.replace('_', " ")),
        message: format!("Ray job {}: {}", details_id(details), failure.reason),
        log_tail: tail.clone(),
        transient,
        config_fault: false,
    };
    if failure.class.is_transient() {
        return Ok(JobEnd::Retry(record(true)));
    }
    if failure.class == JobFailureClass::JobFailed {
        // The worker records a server's failure in its result; a worker
        // that exits without one failed itself, which blames the config
        // only when its log shows a cause that does (the local diagnosis).
        let exit = ExitInfo {
            code: failure.exit_code.map(i64::from),
            oom_killed: false,
        };
        let local = grid_container::diagnose(Some(&exit), &tail);
        if !matches!(local.class, FailureClass::ExitedWithCode(_)) && is_config_fault(&local.class)
        {
            return Ok(JobEnd::Unit(Box::new(UnitEnd::LaunchFailed(
                failure_record(&local),
            ))));
        }
    }
    Ok(JobEnd::Unit(Box::new(remote_unavailable(
        ctx,
        config,
        record(false),
    ))))
}

fn details_id(details: &JobDetails) -> &str {
    details.submission_id.as_deref().unwrap_or("(no id)")
}

/// The worker's result: the last result line of the log that parses.
fn result_in(text: &str) -> Option<UnitResult> {
    text.lines()
        .rev()
        .filter_map(|line| line.trim_end().strip_prefix(RESULT_LINE_PREFIX))
        .find_map(|json| serde_json::from_str(json).ok())
}

/// A worker's result as the unit's end: its journal events appended, its
/// failed attempts and times added to the config's.
fn adopt(
    ctx: &RunContext<'_>,
    config: &PlannedConfig,
    result: UnitResult,
    log: &mut UnitLog,
) -> Result<UnitEnd, SearchError> {
    for event in result.journal {
        ctx.journal(event)?;
    }
    log.failed_attempts.extend(result.failed_attempts);
    let timing = &mut log.timing;
    timing.server_start_s += result.timing.server_start_s;
    timing.battery_s += result.timing.battery_s;
    timing.teardown_s += result.timing.teardown_s;
    timing.backoff_s += result.timing.backoff_s;
    Ok(match result.end {
        UnitEndRecord::Measured { result } => UnitEnd::Measured(*result),
        UnitEndRecord::LaunchFailed { failure } => UnitEnd::LaunchFailed(failure),
        UnitEndRecord::Died { measured, failure } => UnitEnd::Died {
            measured: measured.map(|m| *m),
            failure,
        },
        UnitEndRecord::CutShort => UnitEnd::CutShort,
        UnitEndRecord::LaunchUnavailable { failure } => remote_unavailable(ctx, config, failure),
        UnitEndRecord::BatteryUnavailable { message } => {
            remote_unavailable(ctx, config, plain_failure("battery_error", message, false))
        }
    })
}

fn remote_unavailable(
    ctx: &RunContext<'_>,
    config: &PlannedConfig,
    record: FailureRecord,
) -> UnitEnd {
    let error = SearchError::RemoteUnavailable {
        run_id: ctx.setup.run_id.clone(),
        config: config.name.clone(),
        class: record.class.clone(),
        reason: record.message.clone(),
    };
    UnitEnd::Unavailable {
        record,
        error: Box::new(error),
    }
}

fn request_error(
    ctx: &RunContext<'_>,
    config: &PlannedConfig,
    source: grid_ray::RayError,
) -> SearchError {
    SearchError::RayRequest {
        run_id: ctx.setup.run_id.clone(),
        config: config.name.clone(),
        source: Box::new(source),
    }
}

/// The attempt number of one of our submission IDs (`…-a<N>`).
fn attempt_of(id: &SubmissionId) -> Option<u32> {
    id.as_str().rsplit_once("-a")?.1.parse().ok()
}
