//! Stories told through the `ferry` command line.

mod active;
mod apply;
mod demo;
mod durability;
mod kill;
mod load_rule;
mod login;
mod metrics;
mod migration;
mod notifications;
mod pause;
mod policies;
mod promote;
mod remote;
mod snapshots;
mod token;
mod validate;
