//! The master's side of the local request socket ([`crate::proto::request`]): how `salt`,
//! `salt-run` and other local clients ask the master to publish jobs. Like Salt's local clients, a client proves it may by sending the
//! secret in the master's root key file (`<cachedir>/.root_key`, mode 0400, new at every
//! start), which only the master's user can read; the socket file itself is mode 0600 too.
//! Requests and replies are length-prefixed msgpack maps.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::publish::publish;
use crate::config::Config;
use crate::event::Value;
use crate::ipc::{Listener, Stream};
use crate::proto::request::{Reply, codec, root_key_path};
use crate::proto::{PublishRequest, command};

/// Writes a fresh root key (0400) and returns it.
pub(super) fn create_root_key(config: &Config) -> Result<String, super::MasterError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = root_key_path(config)?;
    let failed = |source: std::io::Error| super::MasterError::RootKey {
        path: path.clone(),
        source,
    };
    let mut bytes = [0u8; 32];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| failed(std::io::Error::other("no secure random numbers")))?;
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(dir) = path.parent() {
        crate::config::create_dir_all(std::fs::DirBuilder::new().recursive(true), dir)
            .map_err(failed)?;
    }
    let _ = std::fs::remove_file(&path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(&path)
        .map_err(failed)?;
    file.write_all(key.as_bytes()).map_err(failed)?;
    Ok(key)
}

/// Local clients served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 256;

pub(super) async fn serve(shared: Arc<Shared>, listener: Listener, stop: CancellationToken) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let clients = tokio_util::task::TaskTracker::new();
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                let (shared, stop) = (shared.clone(), stop.clone());
                clients.spawn(async move {
                    tokio::select! {
                        () = connection(shared, stream) => {}
                        () = stop.cancelled() => {}
                    }
                    drop(slot);
                });
            }
            Err(err) => {
                tracing::warn!("cannot accept a request connection: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    clients.close();
    clients.wait().await;
}

async fn connection(shared: Arc<Shared>, stream: Stream) {
    let mut framed = Framed::new(stream, codec());
    while let Some(Ok(frame)) = framed.next().await {
        let reply = match rmpv::decode::read_value(&mut &frame[..]) {
            Ok(request) => answer(&shared, &request).await,
            Err(err) => Err(format!("the request is not msgpack: {err}")),
        };
        let reply = reply.unwrap_or_else(|error| Reply::Failed(error).to_value());
        let mut bytes = Vec::new();
        if rmpv::encode::write_value(&mut bytes, &reply).is_err()
            || framed.send(bytes::Bytes::from(bytes)).await.is_err()
        {
            return;
        }
    }
}

async fn answer(shared: &Arc<Shared>, request: &Value) -> Result<Value, String> {
    let key = crate::event::map_get(request, "key").and_then(Value::as_str);
    if key != Some(shared.root_key.as_str()) {
        tracing::warn!("refused a local request without the master's root key");
        return Err(
            "the request does not carry the master's root key: run as the master's user".to_owned(),
        );
    }
    match command(request) {
        Some("publish") => {
            let publish_request =
                PublishRequest::from_value(request).map_err(|err| err.to_string())?;
            publish(shared, publish_request).await
        }
        // Salt asks for this over the bus with the root key in the event, where every
        // subscriber reads it; here it stays on the request socket.
        Some("reactors") => Ok(Reply::Reactors(
            shared
                .reactor
                .get()
                .map_or(Value::Array(Vec::new()), crate::reactor::Listing::to_value),
        )
        .to_value()),
        Some("connected") => Ok(Reply::Connected(shared.sessions.connected_from()).to_value()),
        Some("returners") => Ok(Reply::Returners(shared.returners.counters()).to_value()),
        other => Err(format!("unknown request {other:?}")),
    }
}
