//! `vllm-grid report RUN`: re-render the reports and charts from the results.

use grid_search::store::RunStore;

use super::Dirs;
use crate::drive::champion_line;
use crate::error::{AppError, EXIT_OK};
use crate::out::outln;

pub fn run(dirs: &Dirs, run_id: &str) -> Result<u8, AppError> {
    let store = RunStore::at(&dirs.logs, run_id)?;
    let files = grid_search::write_report(&store)?;
    outln!("{}", champion_line(&files.report))?;
    outln!("report: {}", files.markdown.display())?;
    outln!("json:   {}", files.json.display())?;
    for chart in &files.charts {
        outln!("chart:  {}", chart.display())?;
    }
    Ok(EXIT_OK)
}
