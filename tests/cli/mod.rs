//! Stories told through the `ferry` command line.

mod apply;
mod demo;
mod durability;
mod load_rule;
mod login;
mod metrics;
mod notifications;
mod pause;
mod policies;
mod promote;
mod remote;
mod token;
mod validate;
