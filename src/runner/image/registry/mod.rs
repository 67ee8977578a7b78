//! Pulling images from registries (the distribution API, as podman and docker pull): references
//! and short names (`reference`, `conf` for registries.conf), platforms and index resolution
//! (`platform`, `manifest`), credentials (`auth`, `challenge`), TLS (`tls`), the client
//! itself (`client`), and what login and logout do with all of them (`login`). Self-contained: the store, the extraction and the CLI build on `Client`.
//! Nothing here runs unless a pull does (no global initialisers, no start-up cost).

mod auth;
mod challenge;
mod client;
mod conf;
mod environment;
mod login;
mod manifest;
mod platform;
mod reference;
mod tls;

/// Also the login commands' tests use the fake registry.
#[cfg(test)]
pub(crate) mod fake;

pub(crate) use client::{Client, PullOptions, RemoteImage, Verdict};
pub(crate) use conf::RegistriesConf;
pub(crate) use login::{LoginKey, Logins, StoredLogin};
pub(crate) use manifest::Descriptor;
pub(crate) use platform::Platform;
pub(crate) use reference::Reference;
