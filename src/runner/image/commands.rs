//! `unshare-run images`: list, import and remove stored images.

use std::path::PathBuf;

use clap::{FromArgMatches, Parser, Subcommand};

use super::progress::human_size;
use super::pull::{self, PullPolicy, Pulling};
use super::store::{IdLayout, ImageRecord, Store};
use super::{IMPORT_HINT, check_name, open_store, resolve};
use crate::runner::cli::PullArgs;
use crate::runner::error::RunError;
use crate::runner::mapping::{self, MapMode};
use crate::runner::{holder, userns};

#[derive(Debug, Parser)]
#[command(
    name = "unshare-run images",
    about = "List, import and remove the images in your image store",
    long_about = "List, import and remove the images in your image store \
($XDG_DATA_HOME/unshare-run, by default ~/.local/share/unshare-run). `unshare-run --rootfs FILE` imports \
an image file the first time it is used; the files of stored images belong to your subordinate ids, so \
removing one runs in your mapped user namespace.",
    after_help = "Examples:\n  \
unshare-run images                                list stored images\n  \
unshare-run images import bookworm.tar.zst --name bookworm\n  \
unshare-run images pull debian:bookworm           pull from a registry (docker.io here)\n  \
unshare-run images rm bookworm                    remove by name (or digest prefix)"
)]
pub struct ImagesCli {
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// List stored images (the default).
    #[command(alias = "ls")]
    List,
    /// Import an image file (or OCI layout directory) without running anything.
    Import {
        /// The image file or OCI layout directory.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Name the stored image.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// The map the image is for (its files' owners are laid out for it): full, or keep-id for
        /// containers run with --map keep-id.
        #[arg(
            long,
            visible_alias = "userns",
            value_parser = crate::runner::cli::MapModeParser,
            default_value_t = MapMode::Auto,
            value_name = "MODE"
        )]
        map: MapMode,
    },
    /// Pull an image from a registry into the store (what --rootfs REF does the first time).
    Pull {
        /// [docker://]HOST[:PORT]/NAME[:TAG][@sha256:DIGEST], or a short name (debian:bookworm)
        /// resolved as registries.conf(5) says (docker.io when it says nothing).
        #[arg(value_name = "REF")]
        reference: String,
        /// Also name the stored image, for --rootfs NAME.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        #[command(flatten)]
        pull: PullArgs,
    },
    /// Remove stored images, by name, reference, digest or unique digest prefix; layers that no
    /// other image uses go with them.
    #[command(alias = "remove")]
    Rm {
        #[arg(value_name = "NAME|REF|DIGEST", required = true)]
        images: Vec<String>,
    },
}

pub fn main(args: &clap::ArgMatches) -> Result<u8, RunError> {
    let cli = ImagesCli::from_arg_matches(args).map_err(|e| RunError::new(e.to_string()))?;
    let store = open_store()?;
    match cli.action.unwrap_or(Action::List) {
        Action::List => print!("{}", table(&store)),
        Action::Import { file, name, map } => import(&store, &file, name.as_deref(), map)?,
        Action::Pull {
            reference,
            name,
            mut pull,
        } => {
            // `images pull` asks the registry: a stored copy is only reused if it is current.
            if pull.pull == PullPolicy::Missing {
                pull.pull = PullPolicy::Newer;
            }
            pull_image(&store, &reference, name.as_deref(), &pull)?
        }
        Action::Rm { images } => remove(&store, &images)?,
    }
    Ok(0)
}

fn pull_image(
    store: &Store,
    reference: &str,
    name: Option<&str>,
    args: &PullArgs,
) -> Result<(), RunError> {
    if !pull::is_reference(reference) {
        return Err(
            RunError::new(format!("`{reference}` is not an image reference")).with_hint(
                "give [docker://]HOST[:PORT]/NAME[:TAG][@sha256:DIGEST] or a short name such as \
             debian:bookworm; `images import FILE` stores an image file",
            ),
        );
    }
    // Before anything is pulled: a bad name is not worth a download.
    if let Some(name) = name {
        check_name(name)?;
    }
    let pulling = Pulling::from_args(args)?;
    let plan = mapping::plan_for_caller(MapMode::Auto)?;
    let digest = pull::pull(store, reference, &pulling, &plan)?;
    if let Some(name) = name {
        store
            .set_name(name, &digest)
            .map_err(|e| RunError::sys(format!("cannot name the image {name}"), e))?;
    }
    println!("{digest}");
    Ok(())
}

/// The stored image that `text` means: a name, a digest (prefix), or a reference it was pulled as.
fn find(store: &Store, text: &str) -> Result<Option<String>, String> {
    if let Some(digest) = store.find(text)? {
        return Ok(Some(digest));
    }
    Ok(pull::stored_reference(store, text))
}

fn import(
    store: &Store,
    file: &std::path::Path,
    name: Option<&str>,
    map: MapMode,
) -> Result<(), RunError> {
    // Before the map is planned: a mistyped path gets one message, not a map warning first.
    if let Err(e) = std::fs::metadata(file) {
        return Err(
            RunError::sys(format!("cannot import {}", file.display()), e).with_hint(IMPORT_HINT),
        );
    }
    let plan = mapping::plan_for_caller(map)?;
    let resolved = resolve(file, name, &plan, IMPORT_HINT, None)?;
    match resolved
        .rootfs
        .strip_prefix(store.images())
        .ok()
        .and_then(|rest| rest.iter().next())
    {
        Some(digest) => {
            println!("{}", digest.to_string_lossy());
            Ok(())
        }
        None => Err(RunError::new(format!(
            "{} is a root filesystem directory, used in place: there is nothing to import",
            file.display()
        ))),
    }
}

fn remove(store: &Store, references: &[String]) -> Result<(), RunError> {
    let mut digests = Vec::new();
    for reference in references {
        match find(store, reference) {
            Ok(Some(digest)) if store.in_use(&digest) => {
                return Err(RunError::new(format!(
                    "image `{reference}` is in use by a running container"
                ))
                .with_hint("stop the containers that run in it, then remove it"));
            }
            Ok(Some(digest)) => {
                let users = store.used_by(&digest);
                if users.is_empty() {
                    digests.push(digest);
                    continue;
                }
                return Err(RunError::new(format!(
                    "image `{reference}` is used by the container(s) {}",
                    users.join(", ")
                ))
                .with_hint(format!(
                    "remove them first: unshare-run rm {}",
                    users.join(" ")
                )));
            }
            Ok(None) => {
                return Err(RunError::new(format!("no stored image `{reference}`"))
                    .with_hint("`unshare-run images` lists the stored images"));
            }
            Err(ambiguous) => return Err(RunError::new(ambiguous)),
        }
    }
    let plan = mapping::plan_for_caller(MapMode::Auto)?;
    for digest in digests {
        let mut names = store.names_of(&digest);
        names.extend(store.references_of(&digest));
        let temp = store
            .detach(&digest)
            .map_err(|e| RunError::sys(format!("cannot remove image {}", short(&digest)), e))?;
        delete(&plan, temp)?;
        let names = if names.is_empty() {
            String::new()
        } else {
            format!(" ({})", names.join(", "))
        };
        println!("removed {}{names}", short(&digest));
    }
    // Layers go with the last image that lists them; a pull holds them meanwhile.
    let unused = {
        let _lock = store
            .lock_layers(true)
            .map_err(|e| RunError::sys("cannot lock the image store's layers", e))?;
        store
            .detach_unused_layers()
            .map_err(|e| RunError::sys("cannot remove unused layers", e))?
    };
    for temp in unused {
        delete(&plan, temp)?;
    }
    // The holder may keep an overlay of the removed files.
    holder::forget_overlays(&plan);
    Ok(())
}

/// Deletes what was moved into tmp/, in the mapped user namespace (its files belong to subordinate
/// ids). On failure it is left in tmp/, where the next import retries the deletion.
fn delete(plan: &mapping::MapPlan, temp: super::store::TempDir) -> Result<(), RunError> {
    let path = temp.path.clone();
    userns::run_job(plan, || {
        std::fs::remove_dir_all(&path)
            .map_err(|e| RunError::sys(format!("cannot delete {}", path.display()), e))
    })?;
    temp.release();
    Ok(())
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}

/// The listing: one line per image, newest first.
fn table(store: &Store) -> String {
    let rows: Vec<[String; 5]> = store
        .list()
        .into_iter()
        .map(|r: ImageRecord| {
            let mut names = store.names_of(&r.digest);
            names.extend(store.references_of(&r.digest));
            let names = names.join(",");
            [
                short(&r.digest).to_string(),
                if names.is_empty() { "-".into() } else { names },
                human_size(r.size),
                utc_date(r.imported),
                match r.ids {
                    IdLayout::Full => format!("{} ({})", r.source, r.kind),
                    IdLayout::KeepId { .. } => format!("{} ({}, keep-id)", r.source, r.kind),
                },
            ]
        })
        .collect();
    format_table(
        &["DIGEST", "NAME", "SIZE", "IMPORTED (UTC)", "SOURCE"],
        &rows,
    )
}

pub fn format_table(header: &[&str; 5], rows: &[[String; 5]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 5]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(*header);
    for row in rows {
        line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
    }
    out
}

/// "YYYY-MM-DD HH:MM" of a Unix time, in UTC (the civil-from-days algorithm).
pub fn utc_date(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let minute_of_day = (seconds % 86_400) / 60;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        minute_of_day / 60,
        minute_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00");
        assert_eq!(utc_date(1_795_865_400), "2026-11-28 11:30");
    }

    #[test]
    fn the_table_aligns_columns() {
        let rows = [[
            "abc".to_string(),
            "debian".into(),
            "1.0 MiB".into(),
            "2026-11-28 11:30".into(),
            "/x.tar (tarball)".into(),
        ]];
        let text = format_table(
            &["DIGEST", "NAME", "SIZE", "IMPORTED (UTC)", "SOURCE"],
            &rows,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "DIGEST  NAME    SIZE     IMPORTED (UTC)    SOURCE"
        );
        assert_eq!(
            lines[1],
            "abc     debian  1.0 MiB  2026-11-28 11:30  /x.tar (tarball)"
        );
    }
}
