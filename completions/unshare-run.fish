complete -c unshare-run -l rootfs -d 'Run inside this root filesystem instead of the host\'s: a directory, an image file (tar, tar.gz, tar.xz, tar.zst, OCI or Docker archive; imported once), an OCI layout directory, or a stored image\'s name or digest' -r -F
complete -c unshare-run -l name -d 'Name the image imported from --rootfs FILE, for later use as --rootfs NAME' -r
complete -c unshare-run -l overlay -d 'Keep the container\'s writes in DIR instead of the root filesystem; later runs with the same DIR see them (overlayfs)' -r -F
complete -c unshare-run -l entrypoint -d 'Replace the image\'s entrypoint with this program ("" runs COMMAND, or the image\'s command, alone)' -r
complete -c unshare-run -l map -d 'Which ids to map inside the container' -r -f -a "auto\t'The full subordinate map when you have ranges and working helpers, else a single-id map and a warning saying why'
full\t'The full subordinate map, or exit 125 saying what to fix'
root\t'A single-id map: you are uid 0 inside'
current\t'A single-id map that keeps your uid inside'"
complete -c unshare-run -l net -d 'Which network the container gets' -r -f -a "host\t'Share the host\'s network (apt works out of the box)'
none\t'A new network namespace with only the loopback interface, up'
pasta\t'A new network namespace connected to the host\'s network by pasta (package passt), with DNS and published ports (--publish)'"
complete -c unshare-run -s u -l user -d 'Run the command as this user inside (default 0:0): UID[:GID], or names from the root filesystem\'s /etc/passwd and /etc/group (the host\'s in host mode). Without GID: the user\'s primary group from /etc/passwd, else the same number as UID' -r
complete -c unshare-run -l hostname -d 'Hostname inside the container' -r
complete -c unshare-run -s w -l workdir -d 'Working directory of the command inside the container; with --rootfs it is made if missing' -r -F
complete -c unshare-run -s e -l env -d 'Set an environment variable (repeatable)' -r
complete -c unshare-run -l bind -d 'Bind-mount host path SRC at DST inside (repeatable)' -r
complete -c unshare-run -l ro-bind -d 'Bind-mount host path SRC read-only at DST inside (repeatable)' -r
complete -c unshare-run -s p -l publish -d 'Publish a container port on the host: [IP:]HOSTPORT:CONTAINERPORT[/tcp|/udp] (repeatable; needs --net pasta)' -r
complete -c unshare-run -l tmpfs -d 'Mount an empty tmpfs at DST inside (repeatable)' -r -F
complete -c unshare-run -l holder-idle -d 'Keep the full-map user namespace in a holder process for this many seconds after the last start, so that the next containers start without running newuidmap/newgidmap (0: no holder)' -r
complete -c unshare-run -l ephemeral -d 'Leave the root filesystem unchanged: writes go to a temporary layer that is gone after the run (overlayfs over a tmpfs)'
complete -c unshare-run -l read-only -d 'Mount the root filesystem read-only (as podman --read-only); /tmp, /dev/shm and the --tmpfs and --bind mounts stay writable'
complete -c unshare-run -s h -l help -d 'Print help (see more with \'--help\')'
complete -c unshare-run -s V -l version -d 'Print version'
