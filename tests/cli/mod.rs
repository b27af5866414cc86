//! Stories told through the `ferry` command line.

mod apply;
mod demo;
mod durability;
mod login;
mod metrics;
mod migration;
mod notifications;
mod pause;
mod policies;
mod promote;
mod remote;
mod token;
mod validate;
