//! The privileged core of unshare-run.
//!
//! Everything that runs with privilege for the newuidmap/newgidmap applets lives in this crate:
//! - `privilege`: start-up hardening, the drop for unprivileged applets, the switch before the write;
//! - `newidmap`: the helper applets, one named function per check;
//! - `getsubids`: the unprivileged applet that lists a user's ranges as newuidmap reads them (it runs
//!   after the drop, but shares the reader, so it lives here);
//! - `target`, `idmap`, `subid`, `numbers`: what the checks read (target process, triplets, subid files);
//! - `audit`: the syslog trail;
//! - `sys`: the only `unsafe` code, thin syscall wrappers.
//!
//! The runner reuses `subid` to compute the ranges it asks for.

// Enforced: `sys` is the only module allowed to contain unsafe code.
#![deny(unsafe_code)]

pub mod audit;
pub mod getsubids;
pub mod idmap;
pub mod newidmap;
pub mod numbers;
pub mod privilege;
pub mod subid;
#[allow(unsafe_code)]
mod sys;
pub mod target;

pub use sys::pidfd_open;
