//! Receiving descriptors over a unix socket: taking ownership of what the kernel installed is the
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

/// The most descriptors one message may carry (the kernel's SCM_MAX_FD).
pub const MAX_DESCRIPTORS: usize = 253;

/// Receives one message of at most `max_bytes` bytes from `socket` (the rest of a longer one is
/// lost) with the descriptors it carries (close-on-exec, in the order sent). An empty message is the
/// end of the stream.
pub fn receive_message(
    socket: BorrowedFd<'_>,
    max_bytes: usize,
) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut bytes = vec![0u8; max_bytes];
    let mut space = nix::cmsg_space!([RawFd; MAX_DESCRIPTORS]);
    let mut buffer = [IoSliceMut::new(&mut bytes)];
    let (len, fds) = loop {
        match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut buffer,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(message) => {
                let mut received = Vec::new();
                for cmsg in message.cmsgs()? {
                    if let ControlMessageOwned::ScmRights(fds) = cmsg {
                        // SAFETY: the kernel installed these descriptors in our table for this
                        // message alone; nothing else refers to them.
                        received.extend(
                            fds.into_iter()
                                .map(|raw| unsafe { OwnedFd::from_raw_fd(raw) }),
                        );
                    }
                }
                break (message.bytes, received);
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    bytes.truncate(len);
    Ok((bytes, fds))
}
