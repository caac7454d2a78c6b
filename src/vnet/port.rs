//! Frame ports: how a target's Ethernet frames reach the vnet.
//!
//! This module owns the two attachments and nothing else (no addresses, no sockets to the
//! outside world):
//! - [`StreamPort`]: QEMU's `-netdev stream` over a unix socket (QEMU 7.2+): each frame is
//!   preceded by its length as a 4-byte big-endian number. telltale listens, QEMU connects;
//!   no privileges needed.
//! - [`TapPort`]: a Linux TAP device (`IFF_TAP | IFF_NO_PI`, one frame per read/write),
//!   created by telltale, whose fd telltale keeps while the interface itself is moved into
//!   a network namespace (root needed). The namespace's only interface is then this TAP.
//!
//! Both give the same thing: an async reader and writer of whole frames ([`FrameRead`] and
//! [`FrameWrite`]), so the vnet's driver does not care what is attached.
//!
//! This is the crate's only module with `unsafe` code: the TAP ioctl and the reads and
//! writes on its fd (the `tun` crates wrap the same calls but add a dependency tree and
//! own the namespace handling we need to control). Each block says why it is sound.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};

/// Largest frame accepted from a port (jumbo frames included); longer ones end the port.
pub const MAX_FRAME: usize = 65_550;

/// Reads whole frames from a target.
pub enum FrameRead {
    /// QEMU stream socket (buffered: one read often brings many frames).
    Stream(tokio::io::BufReader<OwnedReadHalf>),
    /// TAP device.
    Tap(std::sync::Arc<AsyncFd<OwnedFd>>),
}

/// Writes whole frames to a target.
pub enum FrameWrite {
    /// QEMU stream socket.
    Stream(OwnedWriteHalf),
    /// TAP device.
    Tap(std::sync::Arc<AsyncFd<OwnedFd>>),
}

impl FrameRead {
    /// The next frame, or `None` when the target went away.
    pub async fn read_frame(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<()>> {
        match self {
            FrameRead::Stream(s) => {
                let mut len = [0u8; 4];
                match s.read_exact(&mut len).await {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                    Err(e) => return Err(e),
                }
                let len = u32::from_be_bytes(len) as usize;
                if len > MAX_FRAME {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("stream port sent a {len}-byte frame (limit {MAX_FRAME}); is this QEMU's -netdev stream?"),
                    ));
                }
                buf.resize(len, 0);
                match s.read_exact(buf).await {
                    Ok(_) => Ok(Some(())),
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
                    Err(e) => Err(e),
                }
            }
            FrameRead::Tap(fd) => loop {
                let mut guard = fd.readable().await?;
                // Read into a full-size buffer, then hand out a right-sized copy: queued
                // frames must not each pin 64 KiB.
                let mut big = [0u8; MAX_FRAME];
                let res = guard.try_io(|inner| {
                    // SAFETY: reading into a buffer we own, of the length given.
                    let n = unsafe {
                        libc::read(
                            inner.get_ref().as_raw_fd(),
                            big.as_mut_ptr().cast(),
                            big.len(),
                        )
                    };
                    if n < 0 {
                        Err(io::Error::last_os_error())
                    } else {
                        Ok(n as usize)
                    }
                });
                match res {
                    Ok(Ok(n)) => {
                        buf.clear();
                        buf.extend_from_slice(&big[..n.min(MAX_FRAME)]);
                        return Ok(Some(()));
                    }
                    Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(None),
                    Ok(Err(e)) => return Err(e),
                    Err(_would_block) => continue,
                }
            },
        }
    }
}

impl FrameWrite {
    /// Sends one frame.
    pub async fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        match self {
            FrameWrite::Stream(s) => {
                let len = u32::try_from(frame.len())
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
                let mut buf = Vec::with_capacity(4 + frame.len());
                buf.extend_from_slice(&len.to_be_bytes());
                buf.extend_from_slice(frame);
                s.write_all(&buf).await
            }
            FrameWrite::Tap(fd) => loop {
                let mut guard = fd.writable().await?;
                let res = guard.try_io(|inner| {
                    // SAFETY: writing from a slice we borrow, of its length.
                    let n = unsafe {
                        libc::write(
                            inner.get_ref().as_raw_fd(),
                            frame.as_ptr().cast(),
                            frame.len(),
                        )
                    };
                    if n < 0 {
                        Err(io::Error::last_os_error())
                    } else {
                        Ok(())
                    }
                });
                match res {
                    Ok(r) => return r,
                    Err(_would_block) => continue,
                }
            },
        }
    }
}

/// A QEMU `-netdev stream` attachment: a listening unix socket, then one connection.
pub struct StreamPort;

impl StreamPort {
    /// Binds `path` (removing a stale socket file first). Must be called inside a tokio
    /// runtime. QEMU then connects with
    /// `-netdev stream,id=n0,server=off,addr.type=unix,addr.path=PATH`.
    pub fn listen(path: &Path) -> io::Result<UnixListener> {
        if path.exists() {
            std::fs::remove_file(path)?;
        }
        UnixListener::bind(path)
    }

    /// Splits an accepted connection into a frame reader and writer.
    pub fn split(stream: UnixStream) -> (FrameRead, FrameWrite) {
        let (r, w) = stream.into_split();
        (
            FrameRead::Stream(tokio::io::BufReader::with_capacity(256 * 1024, r)),
            FrameWrite::Stream(w),
        )
    }
}

/// A TAP device owned by telltale.
pub struct TapPort {
    fd: OwnedFd,
    name: String,
}

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;

impl TapPort {
    /// Creates TAP interface `name` (at most 15 bytes) in the current network namespace.
    /// Needs CAP_NET_ADMIN. The interface disappears when the returned value is dropped.
    pub fn create(name: &str) -> io::Result<TapPort> {
        if name.is_empty() || name.len() > 15 || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("TAP name {name:?} must be 1 to 15 visible ASCII characters"),
            ));
        }
        let path = c"/dev/net/tun";
        // SAFETY: plain open(2) of a constant path.
        let raw = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if raw < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("cannot open /dev/net/tun to create TAP {name}: {e} (needs root or CAP_NET_ADMIN)"),
            ));
        }
        // SAFETY: `raw` is a valid fd we own from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // struct ifreq: 16-byte name, then a union whose first member is the short flags.
        let mut ifr = [0u8; 40];
        ifr[..name.len()].copy_from_slice(name.as_bytes());
        ifr[16..18].copy_from_slice(&(IFF_TAP | IFF_NO_PI).to_ne_bytes());
        // SAFETY: TUNSETIFF reads and writes a `struct ifreq`, which `ifr` is large enough for.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, ifr.as_mut_ptr()) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("cannot create TAP {name}: {e} (needs root or CAP_NET_ADMIN)"),
            ));
        }
        // SAFETY: fcntl on our own fd.
        unsafe {
            let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        Ok(TapPort {
            fd,
            name: name.to_string(),
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Turns the device into a frame reader and writer (inside a tokio runtime).
    pub fn split(self) -> io::Result<(FrameRead, FrameWrite)> {
        // SAFETY: `self.fd` is an open fd that the AsyncFd owns from here on, so it stays
        // open and refers to the same TAP queue for the AsyncFd's whole lifetime.
        let fd = unsafe { AsyncFd::register(self.fd) }.map_err(io::Error::from)?;
        let fd = std::sync::Arc::new(fd);
        Ok((FrameRead::Tap(fd.clone()), FrameWrite::Tap(fd)))
    }
}
