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
//! - [`PacketPort`]: an existing Ethernet interface opened with an `AF_PACKET` raw socket
//!   (root needed), for a real device whose gateway is that interface (a cable, a USB
//!   Ethernet gadget, a veth). telltale owns the interface while it runs: it reads every
//!   frame on it (promiscuous) and answers as the device's router; the host's own stack must
//!   be kept off it (`crate::driver::device::prepare_gateway_interface`).
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
    /// `AF_PACKET` socket on an interface.
    Packet(Box<PacketReader>),
}

/// Writes whole frames to a target.
pub enum FrameWrite {
    /// QEMU stream socket.
    Stream(OwnedWriteHalf),
    /// TAP device.
    Tap(std::sync::Arc<AsyncFd<OwnedFd>>),
    /// `AF_PACKET` socket on an interface.
    Packet(std::sync::Arc<AsyncFd<OwnedFd>>),
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
                    // EIO: the interface went down; EBADFD: it was deleted with its
                    // namespace (a container or program that ended). Both: the port closed.
                    Ok(Err(e))
                        if matches!(e.raw_os_error(), Some(libc::EIO) | Some(libc::EBADFD)) =>
                    {
                        return Ok(None)
                    }
                    Ok(Err(e)) => return Err(e),
                    Err(_would_block) => continue,
                }
            },
            FrameRead::Packet(p) => p.read_frame(buf).await,
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
            FrameWrite::Packet(fd) => {
                // Every send starts with a virtio-net header; all zeros = no offloads.
                let mut out = Vec::with_capacity(VNET_HDR_LEN + frame.len());
                out.extend_from_slice(&[0u8; VNET_HDR_LEN]);
                out.extend_from_slice(frame);
                loop {
                    let mut guard = fd.writable().await?;
                    let res = guard.try_io(|inner| {
                        // SAFETY: send(2) from a buffer we own, of its length, on our socket
                        // (bound to the interface, so no address is needed).
                        let n = unsafe {
                            libc::send(
                                inner.get_ref().as_raw_fd(),
                                out.as_ptr().cast(),
                                out.len(),
                                0,
                            )
                        };
                        if n < 0 {
                            Err(io::Error::last_os_error())
                        } else {
                            Ok(())
                        }
                    });
                    match res {
                        // The interface went down or the frame was refused: the frame is
                        // lost like on a wire, the port stays.
                        Ok(Err(e))
                            if matches!(
                                e.raw_os_error(),
                                Some(libc::ENETDOWN | libc::ENXIO | libc::EMSGSIZE | libc::ENOBUFS)
                            ) =>
                        {
                            return Ok(())
                        }
                        Ok(r) => return r,
                        Err(_would_block) => continue,
                    }
                }
            }
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
        use std::os::unix::fs::FileTypeExt;
        // A socket left by an earlier run is replaced; a socket something still listens on, or any other
        // file, is never removed.
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => {
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        "a program is listening on this socket; telltale does not take it over (choose another path)",
                    ));
                }
                std::fs::remove_file(path)?
            }
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "the path exists and is not a socket; telltale does not replace it (choose another path)",
                ))
            }
            Err(_) => {}
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

/// Size of the virtio-net header in front of every frame on a `PACKET_VNET_HDR` socket.
const VNET_HDR_LEN: usize = 10;
/// Receive buffer: a GSO/GRO "frame" can be a 64 KiB IP packet plus headers (more with
/// BIG TCP, which such packets then exceed: they are reported as truncated and dropped).
const PACKET_BUF: usize = 256 * 1024;
const ETH_P_ALL: u16 = 0x0003;
const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
const VIRTIO_NET_HDR_GSO_TCPV4: u8 = 1;
const VIRTIO_NET_HDR_GSO_TCPV6: u8 = 4;
const VIRTIO_NET_HDR_GSO_ECN: u8 = 0x80;

/// An Ethernet interface opened with an `AF_PACKET` raw socket (all protocols, promiscuous).
///
/// Frames are delivered as they were on the wire: the socket uses `PACKET_VNET_HDR`, so a
/// frame whose checksum the sender's stack left to offload (veth, or any local sender) is
/// completed here, and a packet the kernel merged (GRO) or did not split yet (TSO/GSO on a
/// veth) is cut back into MSS-sized TCP segments. Frames the socket sees as outgoing
/// (`PACKET_OUTGOING`: what telltale, or the host, sent on the interface) are ignored.
pub struct PacketPort {
    fd: OwnedFd,
    name: String,
}

impl PacketPort {
    /// Opens interface `ifname` in the current network namespace. Needs CAP_NET_RAW (root).
    /// The interface must exist; bring it up and keep the host's stack off it first
    /// (`crate::driver::device::prepare_gateway_interface`).
    pub fn open(ifname: &str) -> io::Result<PacketPort> {
        if ifname.is_empty()
            || ifname.len() > 15
            || !ifname.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("interface name {ifname:?} must be 1 to 15 visible ASCII characters"),
            ));
        }
        let cname = std::ffi::CString::new(ifname)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name has a NUL"))?;
        // SAFETY: if_nametoindex reads a NUL-terminated string we own.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("there is no network interface {ifname} (see `ip link`)"),
            ));
        }
        let ifindex = i32::try_from(ifindex)
            .map_err(|_| io::Error::other(format!("interface {ifname} has an odd index")))?;
        let fail = |what: &str, e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("cannot {what} on interface {ifname}: {e} (needs root or CAP_NET_RAW)"),
            )
        };
        // Protocol 0: the socket receives nothing until it is bound to the interface, so no
        // frame from another interface can slip in between.
        // SAFETY: plain socket(2).
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if raw < 0 {
            return Err(fail("open an AF_PACKET socket", io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a valid fd we own from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one: libc::c_int = 1;
        // SAFETY: setsockopt with a pointer to an int we own and its size.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_VNET_HDR,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(fail("enable PACKET_VNET_HDR", io::Error::last_os_error()));
        }
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as libc::c_ushort;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = ifindex;
        // SAFETY: bind with a sockaddr_ll we own and its exact size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(fail("bind an AF_PACKET socket", io::Error::last_os_error()));
        }
        // SAFETY: packet_mreq is plain data; all-zero is a valid value.
        let mut mreq: libc::packet_mreq = unsafe { std::mem::zeroed() };
        mreq.mr_ifindex = ifindex;
        mreq.mr_type = libc::PACKET_MR_PROMISC as libc::c_ushort;
        // SAFETY: setsockopt with a packet_mreq we own and its size. The membership ends
        // when the socket is closed.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                (&mreq as *const libc::packet_mreq).cast(),
                std::mem::size_of::<libc::packet_mreq>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(fail("enter promiscuous mode", io::Error::last_os_error()));
        }
        Ok(PacketPort {
            fd,
            name: ifname.to_string(),
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Turns the socket into a frame reader and writer (inside a tokio runtime).
    pub fn split(self) -> io::Result<(FrameRead, FrameWrite)> {
        // SAFETY: as for the TAP: the AsyncFd owns the open socket for its whole lifetime.
        let fd = unsafe { AsyncFd::register(self.fd) }.map_err(io::Error::from)?;
        let fd = std::sync::Arc::new(fd);
        Ok((
            FrameRead::Packet(Box::new(PacketReader {
                fd: fd.clone(),
                buf: vec![0u8; PACKET_BUF],
                pending: std::collections::VecDeque::new(),
                name: self.name,
                truncated: 0,
            })),
            FrameWrite::Packet(fd),
        ))
    }
}

/// The reading side of a [`PacketPort`].
pub struct PacketReader {
    fd: std::sync::Arc<AsyncFd<OwnedFd>>,
    buf: Vec<u8>,
    /// Segments cut from one merged packet, not handed out yet.
    pending: std::collections::VecDeque<Vec<u8>>,
    name: String,
    truncated: u64,
}

impl PacketReader {
    /// Packets dropped because they did not fit the receive buffer.
    pub fn truncated(&self) -> u64 {
        self.truncated
    }

    async fn read_frame(&mut self, out: &mut Vec<u8>) -> io::Result<Option<()>> {
        loop {
            if let Some(f) = self.pending.pop_front() {
                *out = f;
                return Ok(Some(()));
            }
            let mut guard = self.fd.readable().await?;
            let buf = &mut self.buf;
            let res = guard.try_io(|inner| {
                // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
                let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                // SAFETY: recvfrom into a buffer we own, of its length, and a sockaddr_ll we
                // own with its size. MSG_TRUNC makes it return the real packet length.
                let n = unsafe {
                    libc::recvfrom(
                        inner.get_ref().as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_TRUNC,
                        (&mut sll as *mut libc::sockaddr_ll).cast(),
                        &mut len,
                    )
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok((n as usize, sll.sll_pkttype))
                }
            });
            match res {
                Ok(Ok((_, pkttype))) if pkttype == libc::PACKET_OUTGOING => continue,
                Ok(Ok((n, _))) if n > self.buf.len() => {
                    self.truncated += 1;
                    continue;
                }
                Ok(Ok((n, _))) => {
                    let Some(packet) = self.buf.get(..n) else {
                        continue;
                    };
                    self.pending.extend(frames_from_vnet_packet(packet));
                }
                Ok(Err(e)) if e.raw_os_error() == Some(libc::ENETDOWN) => {
                    // The link went down (cable pulled, device rebooting): frames come
                    // again when it is up.
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Ok(Err(e)) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("reading interface {}: {e}", self.name),
                    ))
                }
                Err(_would_block) => continue,
            }
        }
    }
}

/// The wire frames in one packet read from a `PACKET_VNET_HDR` socket (10-byte virtio-net
/// header, then the frame): checksums left to offload are completed, TCP packets merged by
/// GRO or not yet cut by TSO/GSO are cut into `gso_size` segments. Anything unparsable is
/// passed on unchanged (the capture shows what arrived); a packet shorter than the header
/// gives nothing.
pub fn frames_from_vnet_packet(packet: &[u8]) -> Vec<Vec<u8>> {
    let (Some(hdr), Some(frame)) = (packet.get(..VNET_HDR_LEN), packet.get(VNET_HDR_LEN..)) else {
        return Vec::new();
    };
    let flags = hdr[0];
    let gso_type = hdr[1] & !VIRTIO_NET_HDR_GSO_ECN;
    let gso_size = u16::from_ne_bytes([hdr[4], hdr[5]]) as usize;
    let csum_start = u16::from_ne_bytes([hdr[6], hdr[7]]) as usize;
    let csum_offset = u16::from_ne_bytes([hdr[8], hdr[9]]) as usize;
    if (gso_type == VIRTIO_NET_HDR_GSO_TCPV4 || gso_type == VIRTIO_NET_HDR_GSO_TCPV6)
        && gso_size > 0
    {
        if let Some(segs) = segment_tcp(frame, gso_size) {
            return segs;
        }
    }
    let mut f = frame.to_vec();
    if flags & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0 {
        complete_checksum(&mut f, csum_start, csum_offset);
    }
    vec![f]
}

/// One's-complement sum of `data` as big-endian 16-bit words (odd byte padded), unfolded.
fn sum16(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u64::from(*b) << 8;
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Completes an offloaded checksum: the field at `start + offset` holds the pseudo-header
/// sum; the checksum covers everything from `start` to the end of the frame.
fn complete_checksum(frame: &mut [u8], start: usize, offset: usize) {
    let Some(field) = start.checked_add(offset) else {
        return;
    };
    if field.checked_add(2).is_none_or(|end| end > frame.len()) {
        return;
    }
    let Some(covered) = frame.get(start..) else {
        return;
    };
    let sum = !fold(sum16(covered, 0));
    frame[field..field + 2].copy_from_slice(&sum.to_be_bytes());
}

/// Cuts one Ethernet + IPv4/IPv6 + TCP packet into segments of at most `mss` payload bytes
/// with correct lengths, sequence numbers, IPv4 ids, flags and checksums. `None` when the
/// headers are not that (then the packet is passed on as it is).
fn segment_tcp(frame: &[u8], mss: usize) -> Option<Vec<Vec<u8>>> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let l3 = 14usize;
    let (v4, l4) = match ethertype {
        0x0800 => {
            let ihl = usize::from(frame.get(l3)? & 0x0f) * 4;
            if ihl < 20 || *frame.get(l3 + 9)? != 6 {
                return None;
            }
            (true, l3 + ihl)
        }
        0x86dd => {
            if *frame.get(l3 + 6)? != 6 {
                return None; // extension headers: not cut
            }
            (false, l3 + 40)
        }
        _ => return None,
    };
    let doff = usize::from(frame.get(l4 + 12)? >> 4) * 4;
    if doff < 20 {
        return None;
    }
    let hdr_end = l4 + doff;
    let headers = frame.get(..hdr_end)?;
    let payload = frame.get(hdr_end..)?;
    // The IP length field says where the packet ends (Ethernet padding is not payload).
    let payload = if v4 {
        let total = usize::from(u16::from_be_bytes([frame[l3 + 2], frame[l3 + 3]]));
        payload.get(..total.checked_sub(hdr_end - l3)?)?
    } else {
        let plen = usize::from(u16::from_be_bytes([frame[l3 + 4], frame[l3 + 5]]));
        if plen == 0 {
            payload // jumbogram-style length: take what arrived
        } else {
            payload.get(..plen.checked_sub(hdr_end - l3 - 40)?)?
        }
    };
    let seq0 = u32::from_be_bytes([frame[l4 + 4], frame[l4 + 5], frame[l4 + 6], frame[l4 + 7]]);
    let id0 = if v4 {
        u16::from_be_bytes([frame[l3 + 4], frame[l3 + 5]])
    } else {
        0
    };
    let flags0 = frame[l4 + 13];
    let count = payload.len().div_ceil(mss).max(1);
    let mut out = Vec::with_capacity(count);
    for (i, chunk) in payload
        .chunks(mss)
        .chain(payload.is_empty().then_some(&[][..]))
        .enumerate()
    {
        let mut f = Vec::with_capacity(hdr_end + chunk.len());
        f.extend_from_slice(headers);
        f.extend_from_slice(chunk);
        let off = u32::try_from(i * mss).ok()?;
        f[l4 + 4..l4 + 8].copy_from_slice(&seq0.wrapping_add(off).to_be_bytes());
        let mut fl = flags0;
        if i + 1 < count {
            fl &= !(0x01 | 0x08); // FIN, PSH only on the last
        }
        if i > 0 {
            fl &= !0x80; // CWR only on the first
        }
        f[l4 + 13] = fl;
        let l4_len = f.len() - l4;
        if v4 {
            let total = u16::try_from(f.len() - l3).ok()?;
            f[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
            f[l3 + 4..l3 + 6].copy_from_slice(&id0.wrapping_add(i as u16).to_be_bytes());
            f[l3 + 10..l3 + 12].copy_from_slice(&[0, 0]);
            let c = !fold(sum16(&f[l3..l4], 0));
            f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
        } else {
            let plen = u16::try_from(f.len() - l3 - 40).ok()?;
            f[l3 + 4..l3 + 6].copy_from_slice(&plen.to_be_bytes());
        }
        // Pseudo header: addresses, protocol, TCP length.
        let (src, dst) = if v4 {
            (l3 + 12..l3 + 16, l3 + 16..l3 + 20)
        } else {
            (l3 + 8..l3 + 24, l3 + 24..l3 + 40)
        };
        let mut acc = sum16(&f[src], 0);
        acc = sum16(&f[dst], acc);
        acc += 6 + l4_len as u64;
        f[l4 + 16..l4 + 18].copy_from_slice(&[0, 0]);
        let c = !fold(sum16(&f[l4..], acc));
        f[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
        out.push(f);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 + TCP (no options) carrying `payload`, checksums correct.
    fn tcp4(payload: &[u8], flags: u8) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12] = 0x08;
        f[14] = 0x45;
        let total = (40 + payload.len()) as u16;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f[18..20].copy_from_slice(&7u16.to_be_bytes());
        f[22] = 64;
        f[23] = 6;
        f[26..30].copy_from_slice(&[10, 77, 0, 10]);
        f[30..34].copy_from_slice(&[198, 18, 0, 5]);
        f[34..36].copy_from_slice(&40000u16.to_be_bytes());
        f[36..38].copy_from_slice(&80u16.to_be_bytes());
        f[38..42].copy_from_slice(&1000u32.to_be_bytes());
        f[46] = 0x50;
        f[47] = flags;
        f.extend_from_slice(payload);
        let c = !fold(sum16(&f[14..34], 0));
        f[24..26].copy_from_slice(&c.to_be_bytes());
        let mut acc = sum16(&f[26..34], 0) + 6 + (20 + payload.len()) as u64;
        acc = sum16(&f[34..], acc);
        let c = !fold(acc);
        f[50..52].copy_from_slice(&c.to_be_bytes());
        f
    }

    fn parses_ok(f: &[u8]) -> etherparse::SlicedPacket<'_> {
        let p = etherparse::SlicedPacket::from_ethernet(f).expect("valid frame");
        // Checksums: IPv4 header sums to 0xffff, TCP with pseudo header too.
        assert_eq!(fold(sum16(&f[14..34], 0)), 0xffff, "IPv4 header checksum");
        let tcp_len = f.len() - 34;
        let acc = sum16(&f[26..34], 0) + 6 + tcp_len as u64;
        assert_eq!(fold(sum16(&f[34..], acc)), 0xffff, "TCP checksum");
        p
    }

    fn vnet_hdr(flags: u8, gso_type: u8, gso_size: u16, start: u16, offset: u16) -> Vec<u8> {
        let mut h = vec![flags, gso_type];
        h.extend_from_slice(&54u16.to_ne_bytes());
        h.extend_from_slice(&gso_size.to_ne_bytes());
        h.extend_from_slice(&start.to_ne_bytes());
        h.extend_from_slice(&offset.to_ne_bytes());
        h
    }

    #[test]
    fn offloaded_checksum_is_completed() {
        let good = tcp4(b"imei=356938035643809", 0x18);
        // What a veth hands over: the TCP checksum field holds the pseudo-header sum only.
        let mut partial = good.clone();
        let pseudo = fold(sum16(&good[26..34], 0) + 6 + (good.len() - 34) as u64);
        partial[50..52].copy_from_slice(&pseudo.to_be_bytes());
        assert_ne!(partial, good);
        let mut pkt = vnet_hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 34, 16);
        pkt.extend_from_slice(&partial);
        let frames = frames_from_vnet_packet(&pkt);
        assert_eq!(frames, vec![good]);
    }

    #[test]
    fn plain_frames_pass_unchanged_and_short_packets_give_nothing() {
        let good = tcp4(b"x", 0x18);
        let mut pkt = vnet_hdr(0, 0, 0, 0, 0);
        pkt.extend_from_slice(&good);
        assert_eq!(frames_from_vnet_packet(&pkt), vec![good]);
        assert!(frames_from_vnet_packet(&[1, 2, 3]).is_empty());
        // A checksum position beyond the frame is left alone, not a panic.
        let mut pkt = vnet_hdr(VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 60000, 16);
        pkt.extend_from_slice(b"short");
        assert_eq!(frames_from_vnet_packet(&pkt), vec![b"short".to_vec()]);
    }

    #[test]
    fn merged_tcp_is_cut_into_wire_segments() {
        let payload: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        let big = tcp4(&payload, 0x19); // ACK|PSH|FIN
        let mut pkt = vnet_hdr(
            VIRTIO_NET_HDR_F_NEEDS_CSUM,
            VIRTIO_NET_HDR_GSO_TCPV4,
            1448,
            34,
            16,
        );
        pkt.extend_from_slice(&big);
        let frames = frames_from_vnet_packet(&pkt);
        assert_eq!(frames.len(), 3);
        let mut joined = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            let p = parses_ok(f);
            let Some(etherparse::TransportSlice::Tcp(t)) = p.transport else {
                panic!("tcp")
            };
            assert_eq!(t.sequence_number(), 1000 + (i as u32) * 1448);
            assert_eq!(t.fin(), i == 2, "FIN only on the last");
            assert_eq!(t.psh(), i == 2);
            assert!(t.ack());
            let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
                panic!("ipv4")
            };
            assert_eq!(ip.header().identification(), 7 + i as u16);
            joined.extend_from_slice(t.payload());
        }
        assert_eq!(joined, payload);
        assert_eq!(frames[0].len(), 54 + 1448);
        assert_eq!(frames[2].len(), 54 + 3000 - 2 * 1448);
    }

    #[test]
    fn bogus_gso_headers_do_not_panic() {
        for cut in [0usize, 13, 20, 40, 53] {
            let big = tcp4(&[7u8; 100], 0x10);
            let mut pkt = vnet_hdr(0, VIRTIO_NET_HDR_GSO_TCPV4, 10, 0, 0);
            pkt.extend_from_slice(&big[..cut]);
            let _ = frames_from_vnet_packet(&pkt);
        }
        // IPv4 total length larger than the frame: passed through unchanged.
        let mut big = tcp4(&[7u8; 100], 0x10);
        big[16..18].copy_from_slice(&9000u16.to_be_bytes());
        let mut pkt = vnet_hdr(0, VIRTIO_NET_HDR_GSO_TCPV4, 10, 0, 0);
        pkt.extend_from_slice(&big);
        assert_eq!(frames_from_vnet_packet(&pkt), vec![big]);
    }

    #[test]
    fn opening_a_missing_interface_names_it() {
        let err = PacketPort::open("tt-nosuch0")
            .err()
            .expect("no such interface");
        assert!(err.to_string().contains("tt-nosuch0"), "{err}");
        let err = PacketPort::open("a/b").err().expect("bad name");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = PacketPort::open("").err().expect("empty name");
        assert!(err.to_string().contains("1 to 15"), "{err}");
    }
}
