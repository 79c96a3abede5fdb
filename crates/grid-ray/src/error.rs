//! The client's errors: one variant per operation, each naming the
//! dashboard's address and what to do; the HTTP-level cause as the source.

use reqwest::StatusCode;

/// Why one request to the dashboard failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// No connection (refused, reset, DNS, timeout).
    #[error("the request did not reach the dashboard")]
    Unreachable(#[source] reqwest::Error),
    /// The dashboard answered with an error status; `detail` is the last
    /// line of its body (Ray sends a Python traceback whose last line is the
    /// cause).
    #[error("the dashboard answered {status}: {detail}")]
    Status { status: StatusCode, detail: String },
    /// A 2xx reply whose body is not what Ray 2.60.0 sends.
    #[error("the dashboard's reply is not the expected JSON")]
    Decode(#[source] serde_json::Error),
}

impl RequestError {
    /// What the user can do about it, for the operation's message.
    pub(crate) fn hint(&self) -> String {
        match self {
            Self::Unreachable(_) => "is `ray start --head` running, with the dashboard (ray[default]) on this address?".to_string(),
            Self::Status { status, detail } if *status == StatusCode::NOT_FOUND => {
                format!("Ray does not know it ({detail})")
            }
            Self::Status { detail, .. } if detail.contains("already exists") => {
                format!("{detail} (a job of this unit was submitted before: adopt it rather than resubmit)")
            }
            Self::Status { status, detail } if status.is_client_error() => {
                format!("Ray refused the request: {detail}")
            }
            Self::Status { detail, .. } => format!("the Ray head failed: {detail}; see its dashboard log"),
            Self::Decode(_) => "its reply does not parse; is this a Ray 2.60-compatible dashboard (GET /api/version)?".to_string(),
        }
    }

    /// Whether Ray answered that its job agent is not up yet (a 500 whose
    /// text says to try again later; `job_head.py` `submit_job`).
    pub fn is_agent_unavailable(&self) -> bool {
        matches!(self, Self::Status { status, detail }
            if *status == StatusCode::INTERNAL_SERVER_ERROR
                && detail.starts_with("No available agent to submit job"))
    }

    /// Whether Ray answered 404 (no such job or package).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Status { status, .. } if *status == StatusCode::NOT_FOUND)
    }
}

/// The last non-empty line of an error body, cut to 300 characters.
pub(crate) fn detail_of(body: &str) -> String {
    let line = body
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && *l != ".")
        .unwrap_or("(empty body)");
    line.chars().take(300).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum RayError {
    #[error("cannot reach the Ray dashboard at {address}: {}", cause.hint())]
    Version {
        address: String,
        #[source]
        cause: RequestError,
    },
    #[error("cannot submit job {submission_id} to the Ray dashboard at {address}: {}", cause.hint())]
    Submit {
        address: String,
        submission_id: String,
        #[source]
        cause: RequestError,
    },
    #[error("cannot read the status of Ray job {submission_id} at {address}: {}", cause.hint())]
    Status {
        address: String,
        submission_id: String,
        #[source]
        cause: RequestError,
    },
    #[error("cannot read the logs of Ray job {submission_id} at {address}: {}", cause.hint())]
    Logs {
        address: String,
        submission_id: String,
        #[source]
        cause: RequestError,
    },
    #[error("cannot stop Ray job {submission_id} at {address}: {}", cause.hint())]
    Stop {
        address: String,
        submission_id: String,
        #[source]
        cause: RequestError,
    },
    #[error("cannot list the Ray jobs at {address}: {}", cause.hint())]
    List {
        address: String,
        #[source]
        cause: RequestError,
    },
    #[error("cannot read the nodes of the Ray cluster at {address}: {}", cause.hint())]
    Nodes {
        address: String,
        #[source]
        cause: RequestError,
    },
    #[error("cannot check for package {uri} on the Ray dashboard at {address}: {}", cause.hint())]
    PackageCheck {
        address: String,
        uri: String,
        #[source]
        cause: RequestError,
    },
    #[error("cannot upload package {uri} to the Ray dashboard at {address}: {}", cause.hint())]
    PackageUpload {
        address: String,
        uri: String,
        #[source]
        cause: RequestError,
    },
}

impl RayError {
    /// The HTTP-level cause.
    pub fn cause(&self) -> &RequestError {
        match self {
            Self::Version { cause, .. }
            | Self::Submit { cause, .. }
            | Self::Status { cause, .. }
            | Self::Logs { cause, .. }
            | Self::Stop { cause, .. }
            | Self::List { cause, .. }
            | Self::Nodes { cause, .. }
            | Self::PackageCheck { cause, .. }
            | Self::PackageUpload { cause, .. } => cause,
        }
    }
}

/// A dashboard address that is not `http(s)://host:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a Ray dashboard address; give it as http://HOST:PORT (the dashboard's port, 8265 by default)"
)]
pub struct InvalidAddress(pub String);
