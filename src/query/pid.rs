//! Which process a pid means. Pids are reused, so over a time range one pid can name several
//! processes (told apart by their start): `proc PID`, `proc PID --tree` and `report --pid` all
//! choose among them by this one rule, each with its own way of finding the candidates.

use super::tree::Key;

/// Why no single process was chosen.
#[derive(Debug, PartialEq)]
pub enum NoChoice {
    /// No process of the pid in the range (running at `at`, if given).
    None(Option<i64>),
    /// More than one process had the pid in the range: these, and no time was given.
    Several(Vec<Key>),
}

/// The process among `candidates` (one pid's processes in the range, each with its exit time if
/// seen): the only one, or, with `at`, the one running then (started at or before it and not
/// exited before it; of several whose exit is unknown, the latest start: a pid is held by one
/// process at a time).
pub fn choose(candidates: &[(Key, Option<i64>)], at: Option<i64>) -> Result<Key, NoChoice> {
    match at {
        None => match candidates {
            [] => Err(NoChoice::None(None)),
            [(one, _)] => Ok(*one),
            _ => Err(NoChoice::Several(
                candidates.iter().map(|(k, _)| *k).collect(),
            )),
        },
        Some(t) => candidates
            .iter()
            .filter(|((_, start), exit)| *start <= t && exit.is_none_or(|e| e >= t))
            .max_by_key(|((_, start), _)| *start)
            .map(|(k, _)| *k)
            .ok_or(NoChoice::None(Some(t))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue #25 item 7: `proc PID` silently showed a later process that reused the pid.
    #[test]
    fn a_reused_pid_needs_a_time_and_the_time_picks_the_process_running_then() {
        let two = [((7, 100), Some(200)), ((7, 300), None)];
        assert_eq!(
            choose(&two, None),
            Err(NoChoice::Several(vec![(7, 100), (7, 300)]))
        );
        assert_eq!(choose(&two, Some(150)), Ok((7, 100)));
        assert_eq!(choose(&two, Some(200)), Ok((7, 100)), "exit time included");
        assert_eq!(choose(&two, Some(400)), Ok((7, 300)));
        // Between the two, and before the first, none was running.
        assert_eq!(choose(&two, Some(250)), Err(NoChoice::None(Some(250))));
        assert_eq!(choose(&two, Some(50)), Err(NoChoice::None(Some(50))));
        assert_eq!(choose(&two[1..], None), Ok((7, 300)));
        assert_eq!(choose(&[], None), Err(NoChoice::None(None)));
    }

    #[test]
    fn of_processes_whose_exit_was_not_seen_the_latest_start_holds_the_pid() {
        let unknown = [((7, 300), None), ((7, 100), None)];
        assert_eq!(choose(&unknown, Some(400)), Ok((7, 300)));
        assert_eq!(choose(&unknown, Some(200)), Ok((7, 100)));
    }
}
