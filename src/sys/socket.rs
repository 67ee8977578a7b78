//! Receiving a descriptor over a unix socket: taking ownership of what the kernel installed is the
//! unsafe part.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

/// Receives one message of one byte from `socket` with the descriptor it carries (close-on-exec):
/// the byte and the descriptor, if there was one. Further descriptors in the message are closed.
pub fn receive_descriptor(socket: BorrowedFd<'_>) -> io::Result<(u8, Option<OwnedFd>)> {
    let mut byte = [0u8; 1];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut buffer = [IoSliceMut::new(&mut byte)];
    let message = loop {
        match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut buffer,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(message) => break message,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut received = None;
    for cmsg in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for raw in fds {
                // SAFETY: the kernel installed this descriptor in our table for this message alone;
                // nothing else refers to it.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                received.get_or_insert(owned);
            }
        }
    }
    Ok((byte[0], received))
}
