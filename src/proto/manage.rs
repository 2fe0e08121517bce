//! Salt's manage requests on a minion's own bus: what the `beacons.*` and `schedule.*`
//! functions send the minion's services (`manage_beacons`, `manage_schedule`, with a `func`
//! and its fields), and the completion event each request is answered with, under the tag Salt's
//! minion fires for that `func`. Both sides read the tags from one table here.

use crate::event::{Value, map_get};

/// The key of a manage request that the completion event echoes (halite's; Salt's requests
/// have none, and get answers without it), so that requests made at the same time do not take
/// each other's answers.
pub const REQUEST_KEY: &str = "request_id";

/// One kind of manage request: its tag, and the completion tag of each `func`.
#[derive(Debug)]
pub struct Manage {
    /// The tag of the requests (Salt's minion dispatches by prefix).
    pub tag: &'static str,
    /// What the requests manage, for messages (`beacons`, `schedule`).
    pub what: &'static str,
    /// Each `func` and the tag of the event that answers it; a `func` not listed gets no
    /// answer.
    complete: &'static [(&'static str, &'static str)],
}

impl Manage {
    /// The tag of the event that answers `func`, as Salt's minion names it.
    pub fn complete_tag(&self, func: &str) -> Option<&'static str> {
        self.complete
            .iter()
            .find(|(known, _)| *known == func)
            .map(|(_, tag)| *tag)
    }

    /// The fields of the answer to `request`: `fields`, with the request's id echoed.
    pub fn answer(
        &self,
        request: &Value,
        mut fields: Vec<(&'static str, Value)>,
    ) -> Vec<(&'static str, Value)> {
        if let Some(id) = map_get(request, REQUEST_KEY) {
            fields.push((REQUEST_KEY, id.clone()));
        }
        fields
    }
}

/// `manage_beacons`: the beacons service's requests.
pub static BEACONS: Manage = Manage {
    tag: "manage_beacons",
    what: "beacons",
    complete: &[
        ("list", "/salt/minion/minion_beacons_list_complete"),
        (
            "list_available",
            "/salt/minion/minion_beacons_list_available_complete",
        ),
        (
            "validate_beacon",
            "/salt/minion/minion_beacon_validation_complete",
        ),
        ("add", "/salt/minion/minion_beacon_add_complete"),
        ("modify", "/salt/minion/minion_beacon_modify_complete"),
        ("delete", "/salt/minion/minion_beacon_delete_complete"),
        ("enable", "/salt/minion/minion_beacons_enabled_complete"),
        ("disable", "/salt/minion/minion_beacons_disabled_complete"),
        (
            "enable_beacon",
            "/salt/minion/minion_beacon_enabled_complete",
        ),
        (
            "disable_beacon",
            "/salt/minion/minion_beacon_disabled_complete",
        ),
        ("reset", "/salt/minion/minion_beacon_reset_complete"),
    ],
};

/// `manage_schedule`: the scheduler's requests. `modify` is answered as Salt's minion answers
/// it, by the deletion of the old job; `run_job` and `reload` get no answer.
pub static SCHEDULE: Manage = Manage {
    tag: "manage_schedule",
    what: "schedule",
    complete: &[
        ("list", "/salt/minion/minion_schedule_list_complete"),
        ("add", "/salt/minion/minion_schedule_add_complete"),
        ("modify", "/salt/minion/minion_schedule_delete_complete"),
        ("delete", "/salt/minion/minion_schedule_delete_complete"),
        ("enable", "/salt/minion/minion_schedule_enabled_complete"),
        ("disable", "/salt/minion/minion_schedule_disabled_complete"),
        (
            "enable_job",
            "/salt/minion/minion_schedule_enabled_job_complete",
        ),
        (
            "disable_job",
            "/salt/minion/minion_schedule_disabled_job_complete",
        ),
        ("save_schedule", "/salt/minion/minion_schedule_saved"),
        (
            "get_next_fire_time",
            "/salt/minion/minion_schedule_next_fire_time_complete",
        ),
        (
            "job_status",
            "/salt/minion/minion_schedule_job_status_complete",
        ),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_echo_the_request_id_and_requests_without_one_get_salts_answer() {
        let request = Value::Map(vec![
            (Value::from("func"), Value::from("list")),
            (Value::from(REQUEST_KEY), Value::from("42-1")),
        ]);
        let answer = SCHEDULE.answer(&request, vec![("complete", true.into())]);
        assert_eq!(answer.last(), Some(&(REQUEST_KEY, Value::from("42-1"))));
        let salts = Value::Map(vec![(Value::from("func"), Value::from("list"))]);
        assert_eq!(SCHEDULE.answer(&salts, Vec::new()), Vec::new());
        assert_eq!(
            BEACONS.complete_tag("reset"),
            Some("/salt/minion/minion_beacon_reset_complete")
        );
        assert_eq!(SCHEDULE.complete_tag("run_job"), None);
    }
}
