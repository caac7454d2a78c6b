//! The vnet's driver: the one place where its frames meet I/O.
//!
//! This module owns the task that runs a [`Vnet`]: it reads frames from every attached
//! port, hands them to the segment, sends the answers back, and records every frame, both
//! directions, into the run's capture (pcapng, nanosecond timestamps, exact frames) in
//! the order the segment saw them. The TLS secrets of the connections the segment ended
//! go into the capture as Decryption Secrets Blocks (NSS key log, written before the frames
//! the segment sends after deriving them, so before the packets they decrypt) and into
//! `sslkeylog.txt` next to the capture. Ports can be attached while it runs (QEMU connects
//! after it starts). [`VnetHandle::stop`] ends it and returns the log, the counters and
//! the number of frames recorded; the capture is flushed every second, so a crash still
//! leaves a readable file.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::event::EventLog;
use super::port::{FrameRead, FrameWrite, StreamPort};
use super::{PortId, Vnet, VnetConfig, VnetEvent, VnetStats};
use crate::capture::writer::{linktype, PcapngWriter, DSB_TLS_KEY_LOG};

/// Frames queued towards one port before new ones are dropped (like a NIC's ring).
const PORT_QUEUE: usize = 8192;
/// Frames queued from all ports towards the segment (readers wait when it is full).
const INGRESS_QUEUE: usize = 4096;

/// What a stopped vnet hands back.
#[derive(Debug, Clone)]
pub struct VnetSummary {
    /// Everything the segment did.
    pub events: Vec<VnetEvent>,
    /// Counters.
    pub stats: VnetStats,
    /// Frames written to the capture.
    pub frames_recorded: u64,
    /// Frames dropped because a port did not take them fast enough.
    pub frames_dropped: u64,
    /// Where the capture is.
    pub pcap: PathBuf,
    /// Port errors (a port that failed, not one that closed), in words.
    pub port_errors: Vec<String>,
    /// The NSS key log of the TLS sessions the segment ended (`sslkeylog.txt` next to the
    /// capture), when there were any.
    pub key_log: Option<PathBuf>,
    /// TLS secrets (key log lines) recorded.
    pub key_log_lines: u64,
}

/// The file name of the key log, next to the capture.
pub const KEY_LOG_FILE: &str = "sslkeylog.txt";

/// Where the TLS secrets go: the capture's Decryption Secrets Blocks and the key log file.
struct Secrets {
    path: PathBuf,
    file: Option<BufWriter<File>>,
    lines: u64,
}

impl Secrets {
    /// Writes the lines the segment derived since the last call, if any.
    fn record(
        &mut self,
        vnet: &mut Vnet,
        pcap: &mut PcapngWriter<BufWriter<File>>,
    ) -> io::Result<()> {
        let lines = vnet.take_key_log();
        if lines.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for l in &lines {
            text.push_str(l);
            text.push('\n');
        }
        pcap.write_secrets(DSB_TLS_KEY_LOG, text.as_bytes())?;
        if self.file.is_none() {
            let f = File::create(&self.path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot create {}: {e}", self.path.display()),
                )
            })?;
            self.file = Some(BufWriter::new(f));
        }
        if let Some(f) = self.file.as_mut() {
            f.write_all(text.as_bytes())?;
            f.flush()?;
        }
        self.lines += lines.len() as u64;
        Ok(())
    }
}

enum Control {
    Attach(FrameRead, FrameWrite, oneshot::Sender<PortId>),
    Stop(oneshot::Sender<()>),
    Lease([u8; 6], oneshot::Sender<StaticLease>),
}

/// An address on the segment for a target that telltale configures itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticLease {
    /// The target's address.
    pub ip: std::net::Ipv4Addr,
    /// Prefix length of the segment.
    pub prefix_len: u8,
    /// telltale's address: gateway and DNS server.
    pub gateway: std::net::Ipv4Addr,
}

/// A running vnet.
pub struct VnetHandle {
    control: mpsc::UnboundedSender<Control>,
    task: Option<JoinHandle<io::Result<VnetSummary>>>,
    live: Arc<Mutex<EventLog>>,
}

/// Nanoseconds since the Unix epoch.
pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl VnetHandle {
    /// Starts a segment recording into `pcap` (created or truncated). Call inside a tokio
    /// runtime.
    pub fn start(cfg: VnetConfig, pcap: &Path) -> io::Result<VnetHandle> {
        let file = File::create(pcap).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create capture {}: {e}", pcap.display()),
            )
        })?;
        let writer = PcapngWriter::new(
            BufWriter::with_capacity(1 << 20, file),
            linktype::ETHERNET,
            262_144,
        )?;
        let key_log = pcap.with_file_name(KEY_LOG_FILE);
        let _ = std::fs::remove_file(&key_log);
        let (control, control_rx) = mpsc::unbounded_channel();
        let live = Arc::new(Mutex::new(EventLog::new()));
        let vnet = Vnet::new(cfg, now_nanos());
        let task = tokio::spawn(drive(
            vnet,
            writer,
            control_rx,
            live.clone(),
            pcap.to_path_buf(),
            key_log,
        ));
        Ok(VnetHandle {
            control,
            task: Some(task),
            live,
        })
    }

    /// Attaches a target's frame reader and writer; returns its port number.
    pub async fn attach(&self, read: FrameRead, write: FrameWrite) -> io::Result<PortId> {
        let (tx, rx) = oneshot::channel();
        self.control
            .send(Control::Attach(read, write, tx))
            .map_err(|_| io::Error::other("the vnet has stopped"))?;
        rx.await
            .map_err(|_| io::Error::other("the vnet has stopped"))
    }

    /// The address the segment's DHCP server leases to `mac` (the same a DHCP client with
    /// that MAC gets), for targets whose interface telltale configures itself.
    pub async fn lease(&self, mac: [u8; 6]) -> io::Result<StaticLease> {
        let (tx, rx) = oneshot::channel();
        self.control
            .send(Control::Lease(mac, tx))
            .map_err(|_| io::Error::other("the vnet has stopped"))?;
        rx.await
            .map_err(|_| io::Error::other("the vnet has stopped"))
    }

    /// Listens on a unix socket for QEMU's `-netdev stream` and attaches the first
    /// connection (in the background). The socket exists when this returns.
    pub fn listen_qemu(&self, path: &Path) -> io::Result<()> {
        let listener = StreamPort::listen(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot listen on {}: {e}", path.display()),
            )
        })?;
        let control = self.control.clone();
        tokio::spawn(async move {
            if let Ok((stream, _)) = listener.accept().await {
                let (r, w) = StreamPort::split(stream);
                let (tx, _rx) = oneshot::channel();
                let _ = control.send(Control::Attach(r, w, tx));
            }
        });
        Ok(())
    }

    /// The events logged so far (a copy).
    pub fn events(&self) -> Vec<VnetEvent> {
        self.events_since(0)
    }

    /// The events logged after the first `start` ones (a copy).
    pub fn events_since(&self, start: usize) -> Vec<VnetEvent> {
        self.live
            .lock()
            .map(|e| {
                e.events()
                    .get(start..)
                    .map(<[VnetEvent]>::to_vec)
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    /// Stops the segment, flushes the capture and returns the summary.
    pub async fn stop(mut self) -> io::Result<VnetSummary> {
        let (tx, rx) = oneshot::channel();
        if self.control.send(Control::Stop(tx)).is_ok() {
            let _ = rx.await;
        }
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(|e| io::Error::other(format!("vnet task failed: {e}")))?,
            None => Err(io::Error::other("vnet already stopped")),
        }
    }
}

impl Drop for VnetHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

struct PortOut {
    tx: mpsc::Sender<Vec<u8>>,
}

async fn drive(
    mut vnet: Vnet,
    mut pcap: PcapngWriter<BufWriter<File>>,
    mut control: mpsc::UnboundedReceiver<Control>,
    live: Arc<Mutex<EventLog>>,
    pcap_path: PathBuf,
    key_log: PathBuf,
) -> io::Result<VnetSummary> {
    let mut secrets = Secrets {
        path: key_log,
        file: None,
        lines: 0,
    };
    let (ingress_tx, mut ingress) =
        mpsc::channel::<(PortId, io::Result<Option<Vec<u8>>>)>(INGRESS_QUEUE);
    let mut ports: Vec<Option<PortOut>> = Vec::new();
    let mut readers: Vec<JoinHandle<()>> = Vec::new();
    let mut writers: Vec<JoinHandle<()>> = Vec::new();
    let mut dropped = 0u64;
    let mut port_errors = Vec::new();
    let mut last_flush = now_nanos();
    let mut stop_ack = None;

    loop {
        let delay = vnet.poll_delay(now_nanos());
        tokio::select! {
            biased;
            msg = control.recv() => match msg {
                Some(Control::Attach(read, write, ack)) => {
                    let id = ports.len();
                    let (tx, rx) = mpsc::channel(PORT_QUEUE);
                    ports.push(Some(PortOut { tx }));
                    readers.push(tokio::spawn(read_port(id, read, ingress_tx.clone())));
                    writers.push(tokio::spawn(write_port(write, rx)));
                    let _ = ack.send(id);
                }
                Some(Control::Stop(ack)) => { stop_ack = Some(ack); break; }
                Some(Control::Lease(mac, ack)) => {
                    let ip = vnet.lease_for(mac);
                    let cfg = vnet.config();
                    let _ = ack.send(StaticLease { ip, prefix_len: cfg.prefix_len, gateway: cfg.gateway });
                }
                None => break,
            },
            frame = ingress.recv() => {
                let Some(first) = frame else { break };
                // Take what is queued, up to a batch, before answering.
                let mut batch = vec![first];
                while batch.len() < 64 {
                    match ingress.try_recv() { Ok(f) => batch.push(f), Err(_) => break }
                }
                let now = now_nanos();
                let mut frames = Vec::with_capacity(batch.len());
                for (port, item) in batch {
                    match item {
                        Ok(Some(frame)) => {
                            pcap.write_frame(now, &frame)?;
                            frames.push((port, frame));
                        }
                        Ok(None) => { if let Some(p) = ports.get_mut(port) { *p = None; } }
                        Err(e) => {
                            port_errors.push(format!("port {port}: {e}"));
                            if let Some(p) = ports.get_mut(port) { *p = None; }
                        }
                    }
                }
                vnet.handle_batch(frames.iter().map(|(p, f)| (*p, f.as_slice())), now);
            },
            _ = tokio::time::sleep(delay) => {
                vnet.poll(now_nanos());
            },
        }
        // Secrets first: the frames below may be the first they decrypt.
        secrets.record(&mut vnet, &mut pcap)?;
        let now = now_nanos();
        for (port, frame) in vnet.take_output() {
            pcap.write_frame(now, &frame)?;
            match ports.get(port).and_then(Option::as_ref) {
                Some(p) => {
                    if p.tx.try_send(frame).is_err() {
                        dropped += 1;
                    }
                }
                None => dropped += 1,
            }
        }
        let fresh = vnet.take_events();
        if !fresh.is_empty() {
            if let Ok(mut l) = live.lock() {
                l.extend(fresh);
            }
        }
        if now.saturating_sub(last_flush) > 1_000_000_000 {
            pcap.writer_mut().flush()?;
            last_flush = now;
        }
    }

    // Frames still queued from the ports are part of the run: record them.
    while let Ok((port, item)) = ingress.try_recv() {
        if let Ok(Some(frame)) = item {
            let now = now_nanos();
            pcap.write_frame(now, &frame)?;
            vnet.handle_frame(port, &frame, now);
        }
    }
    secrets.record(&mut vnet, &mut pcap)?;
    let now = now_nanos();
    for (_, frame) in vnet.take_output() {
        pcap.write_frame(now, &frame)?;
    }
    for r in readers {
        r.abort();
    }
    drop(ports);
    for w in writers {
        let _ = tokio::time::timeout(Duration::from_millis(200), w).await;
    }
    let frames_recorded = pcap.frames();
    pcap.writer_mut().flush()?;
    if pcap.secrets_blocks() > 0 {
        drop(pcap);
        // Every key in one block before the first packet, so that tshark opens every session (a TLS 1.2
        // session's block would otherwise follow the client's encrypted Finished). The analysis reads keys in
        // any order; if this fails the capture stays as it was, blocks where they were derived.
        let moved = std::fs::read(&secrets.path)
            .and_then(|keys| crate::capture::secrets::secrets_first(&pcap_path, &keys));
        if let Err(e) = moved {
            port_errors.push(format!(
                "capture: the TLS secrets stay where they were derived (not moved to the front): {e}"
            ));
        }
    }
    let (all, events_dropped) = match live.lock() {
        Ok(mut l) => {
            l.extend(vnet.take_events());
            (l.events().to_vec(), l.dropped())
        }
        Err(_) => (vnet.take_events(), 0),
    };
    if let Some(ack) = stop_ack {
        let _ = ack.send(());
    }
    Ok(VnetSummary {
        events: all,
        stats: VnetStats {
            events_dropped,
            ..vnet.stats()
        },
        frames_recorded,
        frames_dropped: dropped,
        pcap: pcap_path,
        port_errors,
        key_log: secrets.file.is_some().then_some(secrets.path),
        key_log_lines: secrets.lines,
    })
}

async fn read_port(
    id: PortId,
    mut read: FrameRead,
    ingress: mpsc::Sender<(PortId, io::Result<Option<Vec<u8>>>)>,
) {
    loop {
        let mut buf = Vec::with_capacity(1600);
        match read.read_frame(&mut buf).await {
            Ok(Some(())) => {
                if ingress.send((id, Ok(Some(buf)))).await.is_err() {
                    return;
                }
            }
            Ok(None) => {
                let _ = ingress.send((id, Ok(None))).await;
                return;
            }
            Err(e) => {
                let _ = ingress.send((id, Err(e))).await;
                return;
            }
        }
    }
}

async fn write_port(mut write: FrameWrite, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(frame) = rx.recv().await {
        if write.write_frame(&frame).await.is_err() {
            return;
        }
    }
}
