//! halite's integration tests: one binary, one shared harness, one file per area.

mod support;

mod beacon_inotify;
mod beacon_metrics;
mod beacon_procs;
mod beacon_reactions;
mod beacons;
mod bench;
mod bus;
mod cli;
mod cluster;
mod conformance;
mod daemon;
mod databases;
mod file_states;
mod files;
mod generated;
mod layers;
mod netns;
mod pillar;
mod reactor;
mod registries;
mod returners;
mod returners_files;
mod returners_outage;
mod returners_sql;
mod schedule;
mod security_bus;
mod security_files;
mod security_link;
mod seed_audit;
mod seed_states;
mod setup;
mod state_cases;
mod state_runs;
mod system_states;
