//! reasoning: three tasks (multi-step planning, a logic problem, a
//! code-optimisation review), graded by rubrics that accept alternatives,
//! paraphrase and number formats. Reasoning tokens are counted apart from
//! answer tokens, and the answer text is kept beside its grade.

use serde::{Deserialize, Serialize};

use super::{Cancelled, Context, required_samples};
use crate::client::Failure;
use crate::config::BenchmarkName;
use crate::grading::{Check, Criterion, Grade, Rubric};
use crate::openai::{ChatMessage, ChatRequest, truncate};

const NAME: BenchmarkName = BenchmarkName::Reasoning;

#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub name: &'static str,
    pub prompt: &'static str,
    pub rubric: Rubric,
}

fn phrases(list: &[&str]) -> Vec<String> {
    list.iter().map(|phrase| phrase.to_string()).collect()
}

/// The three tasks and their rubrics.
pub fn tasks() -> Vec<Task> {
    vec![
        Task {
            name: "multi_step_planning",
            prompt: "A team must finish four tasks. Task A takes 3 days. Task B takes 2 days and can start only after A is done. Task C takes 4 days and can start only after A is done. Task D takes 1 day and can start only after both B and C are done. B and C can run at the same time. What is the minimum number of days to finish all four tasks, and which tasks form the critical path? End with the total number of days.",
            rubric: Rubric {
                criteria: vec![
                    Criterion {
                        name: "total of 8 days".into(),
                        weight: 2.0,
                        check: Check::FinalNumber {
                            value: 8.0,
                            tolerance: 0.0,
                            window_chars: 160,
                        },
                    },
                    Criterion {
                        name: "critical path A, C, D".into(),
                        weight: 1.0,
                        check: Check::AnyPhrase {
                            phrases: phrases(&[
                                "a -> c -> d",
                                "a->c->d",
                                "a c d",
                                "a, c, d",
                                "a, c and d",
                                "a, c, and d",
                                "a then c then d",
                                "tasks a, c and d",
                                "a-c-d",
                                "acd",
                            ]),
                        },
                    },
                    Criterion {
                        name: "B and C in parallel".into(),
                        weight: 1.0,
                        check: Check::AnyPhrase {
                            phrases: phrases(&[
                                "parallel",
                                "same time",
                                "simultaneously",
                                "concurrently",
                                "at once",
                                "overlap",
                            ]),
                        },
                    },
                ],
                pass_fraction: 0.75,
            },
        },
        Task {
            name: "logic_problem",
            prompt: "On an island, knights always tell the truth and knaves always lie. You meet two people, A and B. A says: \"We are both knaves.\" What are A and B? Explain briefly.",
            rubric: Rubric {
                criteria: vec![
                    Criterion {
                        name: "A is a knave".into(),
                        weight: 1.0,
                        check: Check::AnyPhrase {
                            phrases: phrases(&[
                                "a is a knave",
                                "a must be a knave",
                                "a is the knave",
                                "a is lying",
                                "a is a liar",
                                "a lies",
                                "a knave",
                                "a = knave",
                                "a: knave",
                                "a is knave",
                            ]),
                        },
                    },
                    Criterion {
                        name: "B is a knight".into(),
                        weight: 1.0,
                        check: Check::AnyPhrase {
                            phrases: phrases(&[
                                "b is a knight",
                                "b must be a knight",
                                "b is the knight",
                                "b tells the truth",
                                "b is truthful",
                                "b is honest",
                                "b knight",
                                "b = knight",
                                "b: knight",
                                "b is knight",
                            ]),
                        },
                    },
                ],
                pass_fraction: 1.0,
            },
        },
        Task {
            name: "code_optimisation_review",
            prompt: "Review this Python function for performance and propose a better version:\n\ndef has_duplicates(items):\n    for i in range(len(items)):\n        for j in range(i + 1, len(items)):\n            if items[i] == items[j]:\n                return True\n    return False\n\nState the time complexity before and after your change.",
            rubric: Rubric {
                criteria: vec![
                    Criterion {
                        name: "identifies quadratic time".into(),
                        weight: 1.0,
                        check: Check::AnyPhrase {
                            phrases: phrases(&[
                                "o(n^2)",
                                "o(n*n)",
                                "o(n n)",
                                "quadratic",
                                "n squared",
                                "n^2",
                            ]),
                        },
                    },
                    Criterion {
                        name: "uses a set or hash table".into(),
                        weight: 1.0,
                        check: Check::AnyPhrase {
                            phrases: phrases(&[
                                "set(",
                                "set",
                                "hash set",
                                "hashset",
                                "hash table",
                                "dict",
                                "dictionary",
                                "hashing",
                            ]),
                        },
                    },
                    Criterion {
                        name: "states linear time".into(),
                        weight: 1.0,
                        check: Check::AnyPhrase {
                            phrases: phrases(&["o(n)", "linear", "o(n) time"]),
                        },
                    },
                ],
                pass_fraction: 1.0,
            },
        },
    ]
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    pub task: String,
    pub repetition: usize,
    /// The answer as the model gave it, for a person to check the grade.
    pub answer_text: String,
    /// The reasoning text, shortened to 4000 characters.
    pub reasoning_text: String,
    pub grade: Option<Grade>,
    pub completion_tokens: Option<u64>,
    /// Reasoning tokens, only from the server: `completion_tokens_details`
    /// or, when the whole reply is one kind, all completion tokens.
    pub reasoning_tokens: Option<u64>,
    pub answer_tokens: Option<u64>,
    /// Chunks observed in the stream (vLLM sends about one token per
    /// chunk), always available.
    pub reasoning_chunks: u32,
    pub answer_chunks: u32,
    pub finish_reason: Option<String>,
    pub failure: Option<Failure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasoningReport {
    pub results: Vec<TaskResult>,
    pub graded: usize,
    pub passed: usize,
    pub pass_rate: Option<f64>,
    pub mean_score: Option<f64>,
}

pub async fn run(context: &Context<'_>) -> Result<(ReasoningReport, usize, usize), Cancelled> {
    let config = &context.config.reasoning;
    let mut results = Vec::new();
    let tasks = tasks();
    'repetitions: for repetition in 1..=config.repetitions {
        for task in &tasks {
            if context.expired() {
                break 'repetitions;
            }
            let request = ChatRequest {
                messages: vec![ChatMessage::user(task.prompt)],
                max_tokens: config.max_tokens,
                temperature: Some(config.temperature),
                ..ChatRequest::default()
            };
            let exchange = context
                .send(
                    NAME,
                    &request,
                    format!("{} repetition {repetition}", task.name),
                )
                .await?;
            let record = &exchange.record;
            let usage = record.usage;
            let completion = usage.and_then(|u| u.completion_tokens);
            let (reasoning_tokens, answer_tokens) = match (usage, completion) {
                (Some(usage), Some(total)) => match usage.reasoning_tokens {
                    Some(reasoning) => (Some(reasoning), Some(total.saturating_sub(reasoning))),
                    None if record.reasoning_chunks == 0 => (Some(0), Some(total)),
                    None if record.answer_chunks == 0 && record.tool_call_chunks == 0 => {
                        (Some(total), Some(0))
                    }
                    None => (None, None),
                },
                _ => (None, None),
            };
            let grade = record
                .succeeded()
                .then(|| task.rubric.grade(&exchange.reply.answer));
            results.push(TaskResult {
                task: task.name.to_string(),
                repetition,
                answer_text: exchange.reply.answer.clone(),
                reasoning_text: truncate(&exchange.reply.reasoning, 4000),
                grade,
                completion_tokens: completion,
                reasoning_tokens,
                answer_tokens,
                reasoning_chunks: record.reasoning_chunks,
                answer_chunks: record.answer_chunks,
                finish_reason: record.finish_reason.clone(),
                failure: record.failure.clone(),
            });
        }
    }
    let grades: Vec<&Grade> = results.iter().filter_map(|r| r.grade.as_ref()).collect();
    let graded = grades.len();
    let passed = grades.iter().filter(|g| g.passed).count();
    let report = ReasoningReport {
        pass_rate: (graded > 0).then(|| passed as f64 / graded as f64),
        mean_score: (graded > 0)
            .then(|| grades.iter().map(|g| g.score).sum::<f64>() / graded as f64),
        graded,
        passed,
        results,
    };
    let required = required_samples(context.config, tasks.len() * config.repetitions);
    Ok((report, graded, required))
}
