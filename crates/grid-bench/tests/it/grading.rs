//! The rubric grader accepts paraphrase, alternatives and number formats,
//! and still fails wrong answers.

use grid_bench::benchmarks::reasoning::tasks;
use grid_bench::grading::{extract_numbers, normalize};

use crate::check;

fn passes(task: &str, answer: &str) -> bool {
    let task = tasks()
        .into_iter()
        .find(|t| t.name == task)
        .expect("task exists");
    task.rubric.grade(answer).passed
}

#[test]
fn rubric_verdicts_on_good_paraphrased_and_wrong_answers() {
    check(
        &[
            (
                "planning, arrows and digits",
                (
                    "multi_step_planning",
                    "B and C can run in parallel after A. The critical path is A → C → D: 3 + 4 + 1. **Total: 8 days**",
                ),
                true,
            ),
            (
                "planning, words",
                (
                    "multi_step_planning",
                    "Tasks B and C overlap, so the longest chain is A, C and D. It takes eight days in total.",
                ),
                true,
            ),
            (
                "planning, markdown bold number",
                (
                    "multi_step_planning",
                    "Run B and C simultaneously.\n\nCritical path: A-C-D\n\nMinimum: **8** days",
                ),
                true,
            ),
            (
                "planning, wrong total",
                (
                    "multi_step_planning",
                    "B and C run in parallel; the critical path is A -> C -> D, so 10 days.",
                ),
                false,
            ),
            (
                "planning, total only mentioned early",
                (
                    "multi_step_planning",
                    "8 is tempting at first glance. However, B and C are done at the same time, and the path A, C, D has to be walked in full, which involves a careful look at every single dependency between the four tasks. The real total is nine days.",
                ),
                false,
            ),
            (
                "logic, direct",
                ("logic_problem", "A is a knave and B is a knight."),
                true,
            ),
            (
                "logic, paraphrase",
                (
                    "logic_problem",
                    "If A told the truth he would be a knave, a contradiction, so A is lying. Since the statement is false, not both are knaves: B tells the truth.",
                ),
                true,
            ),
            (
                "logic, swapped",
                ("logic_problem", "A is a knight and B is a knave."),
                false,
            ),
            (
                "code, superscript",
                (
                    "code_optimisation_review",
                    "The nested loops are O(n²). Use a set: `return len(set(items)) != len(items)`, which is O(n).",
                ),
                true,
            ),
            (
                "code, words",
                (
                    "code_optimisation_review",
                    "This is quadratic time. Track seen values in a hash set and stop at the first repeat: linear time overall.",
                ),
                true,
            ),
            (
                "code, no complexity after",
                (
                    "code_optimisation_review",
                    "It is quadratic. Sort the list first.",
                ),
                false,
            ),
        ],
        |(task, answer)| passes(task, answer),
    );
}

#[test]
fn grade_keeps_which_alternative_matched() {
    let task = tasks()
        .into_iter()
        .find(|t| t.name == "logic_problem")
        .expect("task");
    let grade = task
        .rubric
        .grade("So B is honest, and A is the liar... A is a liar.");
    assert!(grade.passed, "{grade:?}");
    assert_eq!(grade.criteria[1].matched.as_deref(), Some("b is honest"));
}

#[test]
fn numbers_in_digit_word_and_separator_forms() {
    check(
        &[
            ("digits", "took 8 days", vec![8.0]),
            ("thousands separator", "about 1,000 tokens", vec![1000.0]),
            ("decimal", "3.5 ms", vec![3.5]),
            ("k suffix", "2k requests", vec![2000.0]),
            ("word", "eight days", vec![8.0]),
            ("compound word", "twenty-four hours", vec![24.0]),
            ("negative", "changed by -5", vec![-5.0]),
            ("not inside identifiers", "sha256 and o(n)", vec![]),
        ],
        |text| {
            extract_numbers(&normalize(text))
                .into_iter()
                .map(|(_, n)| n)
                .collect::<Vec<f64>>()
        },
    );
}
