//! The binary's only `unsafe` code, by concern: the process entry point, process creation, signal
//! dispositions, capabilities, closing descriptors by number, the session keyring, terminal ioctls,
//! descriptors received over a socket, the new mount API's calls (for read-only binds), the seccomp
//! filter, extended attributes, the loopback ioctl and a namespace's owner: what nix cannot offer safely. The privileged code has its own
//! module in helpers/src/sys.rs.

pub mod capabilities;
mod descriptors;
mod entry;
pub mod keyring;
pub mod mount;
mod net;
mod process;
pub mod seccomp;
mod signals;
mod socket;
pub mod terminal;
mod xattr;

pub use descriptors::{close_from_except, is_inheritable};
pub use net::{bring_up_loopback, owning_user_namespace};
pub use process::{
    Forked, clone_into, detach_and_exec, detach_and_exec_with, exit_now, pidfd_open,
    pidfd_send_signal, spawn_dying_with_parent, spawn_sharing_memory, take_inherited,
};
pub use signals::{die_by, ignore, install_noop_handler};
pub use socket::{MAX_DESCRIPTORS, receive_descriptor, receive_message};
pub use xattr::{read_xattr, set_xattr};
