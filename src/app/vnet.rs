//! `telltale vnet`: telltale's isolated network served on a unix socket to a QEMU started by hand, until
//! Ctrl-C, with its events shown as JSON lines as they happen.

use std::io::Write;

use crate::error::Error;

/// `telltale vnet`: serve the network on a unix socket until Ctrl-C.
pub fn serve(
    listen: &std::path::Path,
    pcap: &std::path::Path,
    events_file: Option<&std::path::Path>,
    quiet: bool,
) -> Result<(), Error> {
    use crate::vnet::{run::VnetHandle, VnetConfig};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::resource("start the async runtime"))?;
    rt.block_on(async {
        let io_err = |path: &std::path::Path, source: std::io::Error| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let handle = VnetHandle::start(VnetConfig::default(), pcap).map_err(|e| io_err(pcap, e))?;
        handle.listen_qemu(listen).map_err(|e| io_err(listen, e))?;
        if !quiet {
            eprintln!(
                "telltale vnet: listening on {} (QEMU: -netdev stream,id=n0,server=off,addr.type=unix,addr.path={}); Ctrl-C stops",
                listen.display(),
                listen.display()
            );
        }
        let mut shown = 0usize;
        let mut out = match events_file {
            Some(p) => Some(std::fs::File::create(p).map_err(|e| io_err(p, e))?),
            None => None,
        };
        let mut show = |evs: Vec<crate::vnet::VnetEvent>| {
            for e in evs {
                let line = serde_json::to_string(&e).unwrap_or_default();
                if !quiet {
                    eprintln!("{line}");
                }
                if let Some(f) = out.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
            }
        };
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                    let evs = handle.events_since(shown);
                    shown += evs.len();
                    show(evs);
                }
            }
        }
        let summary = handle
            .stop()
            .await
            .map_err(Error::resource("stop the network"))?;
        show(summary.events.get(shown..).map(<[_]>::to_vec).unwrap_or_default());
        let _ = std::fs::remove_file(listen);
        if !quiet {
            eprintln!(
                "telltale vnet: {} frames recorded in {} ({} in, {} out, {} TCP connections)",
                summary.frames_recorded,
                pcap.display(),
                summary.stats.frames_in,
                summary.stats.frames_out,
                summary.stats.connections
            );
            if summary.stats.events_dropped > 0 {
                eprintln!(
                    "telltale vnet: {} events not shown or kept (the event log is full; the capture has their frames)",
                    summary.stats.events_dropped
                );
            }
        }
        Ok(())
    })
}
