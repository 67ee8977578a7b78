# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_unshare_run_global_optspecs
    string join \n rootfs= pull= platform= authfile= tls-verify= q/quiet name= rm d/detach systemd= stop-signal= ephemeral read-only overlay= entrypoint= map= net= u/user= t/tty= i/interactive cap-add= cap-drop= privileged security-opt= preserve-fds= hostname= w/workdir= e/env= bind= ro-bind= p/publish= tmpfs= holder-idle= h/help V/version
end

function __fish_unshare_run_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_unshare_run_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_unshare_run_using_subcommand
    set -l cmd (__fish_unshare_run_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c unshare-run -n "__fish_unshare_run_needs_command" -l rootfs -d 'Run inside this root filesystem instead of the host\'s: a directory, an image file (tar, tar.gz, tar.xz, tar.zst, OCI or Docker archive; imported once), an OCI layout directory, a stored image\'s name or digest, or an image of a registry (pulled once: debian:bookworm, quay.io/fedora/fedora:41, docker://HOST:PORT/NAME@sha256:DIGEST), tried in this order' -r -F
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l pull -d 'When --rootfs REF asks the registry: missing (only what is not stored), always, never, newer (when the registry\'s manifest changed)' -r -f -a "missing\t'Pull only what is not stored yet'
always\t'Ask the registry every time; a changed image is pulled'
never\t'Never pull: the image must be stored'
newer\t'Pull when the registry\'s manifest differs from the stored image\'s'"
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l platform -d 'The platform to pull from a multi-platform image, OS/ARCH[/VARIANT] (default: this machine\'s, e.g. linux/amd64)' -r
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l authfile -d 'Registry credentials (podman\'s auth.json format) to use instead of the usual files (REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json, ~/.docker/config.json)' -r -F
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l tls-verify -d '--tls-verify=false accepts any certificate of the registry, and plain HTTP: only for a registry you trust on a network you trust (better: its CA in ~/.config/containers/certs.d/HOST:PORT/ca.crt)' -r -f -a "true\t''
false\t''"
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l name -d 'Name the container, as podman does: it is listed by `unshare-run ps -a` after it ended, until `unshare-run rm NAME` (names are unique per user). To name an image, use `unshare-run images import FILE --name NAME` or `images pull REF --name NAME`' -r
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l systemd -d 'Whether the command is systemd (podman\'s --systemd): true (the default) when it is /sbin/init or a systemd binary, always, or false. systemd as a container\'s init needs a cgroup v2 subtree delegated to you, which unshare-run does not set up: such a run exits 125 and says so; false runs the command as any other' -r -f -a "true\t'When the command is /sbin/init or systemd'
false\t''
always\t''"
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l stop-signal -d 'The signal `unshare-run stop` sends first (default: the image\'s StopSignal, else SIGTERM)' -r
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l overlay -d 'Keep the container\'s writes in DIR instead of the root filesystem; later runs with the same DIR see them (overlayfs)' -r -F
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l entrypoint -d 'Replace the image\'s entrypoint with this program ("" runs COMMAND, or the image\'s command, alone)' -r
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l map -l userns -d 'Which ids to map inside the container (--userns is podman\'s name for it): full for a system of its own (packages, several users); keep-id to work on your own files (a directory bound in stays yours, and what the command makes there is yours on the host); root or current where the helpers or your ranges are missing' -r -f -a "auto\t'The full map when you have ranges and working helpers, else a single-id map and a warning saying why'
full\t'You are uid 0 inside and all your subordinate ids are 1..: a system of its own, where apt, su and chown to any id work (exit 125 when impossible)'
keep-id\t'Your own uid and gid inside, all your subordinate ids around them (podman\'s keep-id; keep-id:uid=UID,gid=GID picks the numbers): for working on your files, which stay yours inside and out. The command runs as you unless --user (--user 0 is root inside, for apt). Never falls back (exit 125)'
root\t'A single-id map without the helpers: you are uid 0 inside, alone'
current\t'A single-id map without the helpers that keeps your uid inside'"
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l net -d 'Which network the container gets. Default: private with --rootfs (pasta with --publish), the host\'s without. pasta:OPTION,... adds options to its pasta\'s command line, as podman\'s --network pasta:...; pasta:--map-gw lets the container reach the host\'s own services through the gateway address, which is off otherwise' -r -f -a "private\t'The default with --rootfs: a private network connected to the outside by pasta (package passt), with DNS; nothing of the host\'s own is reachable (its loopback services, its abstract sockets, the host through pasta\'s gateway). Your containers of the same map share this one network through the holder: they reach each other\'s loopback services and abstract sockets and share its ports. Without a holder (--holder-idle 0, single-id maps) and under --map keep-id each container gets a pasta of its own'
host\t'Share the host\'s network, its loopback services and abstract sockets (the default without --rootfs)'
none\t'A new network namespace with only the loopback interface, up'
pasta\t'A network namespace of the container\'s own, connected to the outside by a pasta of its own, with DNS and published ports (--publish; the default when ports are published)'"
complete -c unshare-run -n "__fish_unshare_run_needs_command" -s u -l user -d 'Run the command as this user inside: UID[:GID], or names from the root filesystem\'s /etc/passwd and /etc/group (the host\'s in host mode). Without GID: the user\'s primary group from /etc/passwd, else the same number as UID. Default: the image\'s User, else you as the map has you (0:0 with the full map); under --map keep-id always your own uid and gid' -r
complete -c unshare-run -n "__fish_unshare_run_needs_command" -s t -l tty -d 'Give the container a terminal of its own (a pseudo-terminal of its devpts, relayed to yours, which is in raw mode meanwhile). Default: with --rootfs, when stdin and stdout are terminals; --tty=false: none. Without one, a --rootfs command runs in a session of its own with no controlling terminal: it cannot push input into your shell (TIOCSTI). Your terminal\'s settings come back when the container ends, and before unshare-run stops or ends by a signal; only after SIGKILL does it stay raw (`reset` repairs it)' -r -f -a "true\t''
false\t''"
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l cap-add -d 'Add a capability to the --rootfs container\'s default set (podman\'s: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT): a name with or without CAP_, or ALL (repeatable, or comma-separated). Capabilities count inside the user namespace only: SYS_ADMIN mounts there, never on the host' -r
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l cap-drop -d 'Take a capability from the default set, or ALL of them (repeatable, or comma-separated)' -r
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l security-opt -d 'podman\'s security options (repeatable): no-new-privileges (no setuid program or file capability gains anything); seccomp=unconfined (no system-call filter) or seccomp=FILE (a profile in Docker\'s and podman\'s seccomp.json format instead of the default filter, which refuses new namespaces, mounts, the keyrings and io_uring unless --cap-add SYS_ADMIN); unmask=ALL|PATH[:PATH...] (show masked kernel files); keyring=host (your session keyring inside instead of one of the container\'s own); label=disable (accepted)' -r
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l preserve-fds -d 'Pass descriptors 3 to 3+N-1 on to the command (with --rootfs, it gets only 0, 1 and 2 otherwise; systemd\'s socket activation, LISTEN_FDS, is passed on without it). Host mode passes every descriptor' -r
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l hostname -d 'Hostname inside the container' -r
complete -c unshare-run -n "__fish_unshare_run_needs_command" -s w -l workdir -d 'Working directory of the command inside the container; with --rootfs it is made if missing' -r -F
complete -c unshare-run -n "__fish_unshare_run_needs_command" -s e -l env -d 'Set an environment variable (repeatable)' -r
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l bind -d 'Bind-mount host path SRC at DST inside (repeatable)' -r
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l ro-bind -d 'Bind-mount host path SRC read-only at DST inside (repeatable)' -r
complete -c unshare-run -n "__fish_unshare_run_needs_command" -s p -l publish -d 'Publish a container port on the host: [IP:]HOSTPORT:CONTAINERPORT[/tcp|/udp] (repeatable; through a pasta of the container\'s own: without --net, or with --net pasta)' -r
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l tmpfs -d 'Mount an empty tmpfs at DST inside (repeatable)' -r -F
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l holder-idle -d 'Keep the full-map user namespace in a holder process for this many seconds after the last start, so that the next containers start without running newuidmap/newgidmap (0: no holder). The holder also keeps the private network and the overlays of pulled images mounted' -r
complete -c unshare-run -n "__fish_unshare_run_needs_command" -s q -l quiet -d 'Say nothing while pulling (errors are still said)'
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l rm -d 'Remove the named container\'s record when it ends (a run without --name leaves none)'
complete -c unshare-run -n "__fish_unshare_run_needs_command" -s d -l detach -d 'Run the container in the background, as podman run -d: unshare-run prints its name once its command runs and returns; its output goes to its log (`unshare-run logs NAME`), its stdin is /dev/null. Without --name it gets a generated name. `ps`, `exec`, `stop`, `start` and `rm` take the name'
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l ephemeral -d 'Leave the root filesystem unchanged: writes go to a temporary layer that is gone after the run (overlayfs over a tmpfs)'
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l read-only -d 'Mount the root filesystem read-only (as podman --read-only); /tmp, /dev/shm and the --tmpfs and --bind mounts stay writable'
complete -c unshare-run -n "__fish_unshare_run_needs_command" -s i -l interactive -d 'Accepted for podman\'s `-it`: stdin always reaches the command'
complete -c unshare-run -n "__fish_unshare_run_needs_command" -l privileged -d 'Confine the --rootfs container no more than host mode is: every capability of the user namespace, no system-call filter, no masked kernel files (for nested containers and mounts inside). Your descriptors stay out all the same'
complete -c unshare-run -n "__fish_unshare_run_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c unshare-run -n "__fish_unshare_run_needs_command" -s V -l version -d 'Print version'
complete -c unshare-run -n "__fish_unshare_run_needs_command" -a "doctor" -d 'Check that you can start containers with your full id map here, and say what to fix'
complete -c unshare-run -n "__fish_unshare_run_needs_command" -a "images" -d 'List, import and remove the images in your image store'
complete -c unshare-run -n "__fish_unshare_run_needs_command" -a "login" -d 'Log in to a container registry: check the credentials there and keep them for pulls (as podman login)'
complete -c unshare-run -n "__fish_unshare_run_needs_command" -a "logout" -d 'Log out of a container registry: remove its credentials from the auth file (as podman logout)'
complete -c unshare-run -n "__fish_unshare_run_needs_command" -a "ps" -d 'List your containers: the running ones, or with -a also those that ended'
complete -c unshare-run -n "__fish_unshare_run_needs_command" -a "rm" -d 'Remove containers (running ones with --force)'
complete -c unshare-run -n "__fish_unshare_run_needs_command" -a "exec" -d 'Run a command in a running container'
complete -c unshare-run -n "__fish_unshare_run_needs_command" -a "logs" -d 'Show a detached container\'s output'
complete -c unshare-run -n "__fish_unshare_run_needs_command" -a "stop" -d 'Stop running containers: their stop signal, then SIGKILL after a timeout'
complete -c unshare-run -n "__fish_unshare_run_needs_command" -a "kill" -d 'Send a signal to running containers (default SIGKILL)'
complete -c unshare-run -n "__fish_unshare_run_needs_command" -a "start" -d 'Start containers again, in the background'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand images; and not __fish_seen_subcommand_from list import pull rm" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand images; and not __fish_seen_subcommand_from list import pull rm" -f -a "list" -d 'List stored images (the default)'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand images; and not __fish_seen_subcommand_from list import pull rm" -f -a "import" -d 'Import an image file (or OCI layout directory) without running anything'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand images; and not __fish_seen_subcommand_from list import pull rm" -f -a "pull" -d 'Pull an image from a registry into the store (what --rootfs REF does the first time)'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand images; and not __fish_seen_subcommand_from list import pull rm" -f -a "rm" -d 'Remove stored images, by name, reference, digest or unique digest prefix; layers that no other image uses go with them'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand images; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand images; and __fish_seen_subcommand_from import" -l name -d 'Name the stored image' -r
complete -c unshare-run -n "__fish_unshare_run_using_subcommand images; and __fish_seen_subcommand_from import" -l map -l userns -d 'The map the image is for (its files\' owners are laid out for it): full, or keep-id for containers run with --map keep-id' -r -f -a "auto\t'The full map when you have ranges and working helpers, else a single-id map and a warning saying why'
full\t'You are uid 0 inside and all your subordinate ids are 1..: a system of its own, where apt, su and chown to any id work (exit 125 when impossible)'
keep-id\t'Your own uid and gid inside, all your subordinate ids around them (podman\'s keep-id; keep-id:uid=UID,gid=GID picks the numbers): for working on your files, which stay yours inside and out. The command runs as you unless --user (--user 0 is root inside, for apt). Never falls back (exit 125)'
root\t'A single-id map without the helpers: you are uid 0 inside, alone'
current\t'A single-id map without the helpers that keeps your uid inside'"
complete -c unshare-run -n "__fish_unshare_run_using_subcommand images; and __fish_seen_subcommand_from import" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand images; and __fish_seen_subcommand_from pull" -l name -d 'Also name the stored image, for --rootfs NAME' -r
complete -c unshare-run -n "__fish_unshare_run_using_subcommand images; and __fish_seen_subcommand_from pull" -l pull -d 'When --rootfs REF asks the registry: missing (only what is not stored), always, never, newer (when the registry\'s manifest changed)' -r -f -a "missing\t'Pull only what is not stored yet'
always\t'Ask the registry every time; a changed image is pulled'
never\t'Never pull: the image must be stored'
newer\t'Pull when the registry\'s manifest differs from the stored image\'s'"
complete -c unshare-run -n "__fish_unshare_run_using_subcommand images; and __fish_seen_subcommand_from pull" -l platform -d 'The platform to pull from a multi-platform image, OS/ARCH[/VARIANT] (default: this machine\'s, e.g. linux/amd64)' -r
complete -c unshare-run -n "__fish_unshare_run_using_subcommand images; and __fish_seen_subcommand_from pull" -l authfile -d 'Registry credentials (podman\'s auth.json format) to use instead of the usual files (REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json, ~/.docker/config.json)' -r -F
complete -c unshare-run -n "__fish_unshare_run_using_subcommand images; and __fish_seen_subcommand_from pull" -l tls-verify -d '--tls-verify=false accepts any certificate of the registry, and plain HTTP: only for a registry you trust on a network you trust (better: its CA in ~/.config/containers/certs.d/HOST:PORT/ca.crt)' -r -f -a "true\t''
false\t''"
complete -c unshare-run -n "__fish_unshare_run_using_subcommand images; and __fish_seen_subcommand_from pull" -s q -l quiet -d 'Say nothing while pulling (errors are still said)'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand images; and __fish_seen_subcommand_from pull" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand images; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand login" -l authfile -d 'The auth file to write (and the only one read), instead of $XDG_RUNTIME_DIR/containers/auth.json. REGISTRY_AUTH_FILE does the same' -r -F
complete -c unshare-run -n "__fish_unshare_run_using_subcommand login" -s u -l username -d 'The username (asked for on the terminal when not given)' -r
complete -c unshare-run -n "__fish_unshare_run_using_subcommand login" -s p -l password -d 'The password. Others can see it in `ps` and your shell\'s history: prefer --password-stdin, or the question on the terminal' -r
complete -c unshare-run -n "__fish_unshare_run_using_subcommand login" -l tls-verify -d '--tls-verify=false accepts any certificate of the registry, and plain HTTP: only for a registry you trust on a network you trust (better: its CA in ~/.config/containers/certs.d/HOST:PORT/ca.crt)' -r -f -a "true\t''
false\t''"
complete -c unshare-run -n "__fish_unshare_run_using_subcommand login" -l password-stdin -d 'Read the password from stdin (its lines joined; needs --username)'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand login" -l get-login -d 'Print the username stored for REGISTRY (exit 125 when there is none), and do nothing else'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand login" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand logout" -l authfile -d 'The auth file to edit (it must exist), instead of $XDG_RUNTIME_DIR/containers/auth.json. REGISTRY_AUTH_FILE does the same' -r -F
complete -c unshare-run -n "__fish_unshare_run_using_subcommand logout" -s a -l all -d 'Remove the credentials of every registry in the file'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand logout" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand ps" -s a -l all -d 'Also the containers that are not running'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand ps" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand rm" -s f -l force -d 'Kill running containers first'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand rm" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand exec" -s u -l user -d 'Run the command as this user inside: UID[:GID], or names from the container\'s /etc/passwd and /etc/group (default: the container\'s user)' -r
complete -c unshare-run -n "__fish_unshare_run_using_subcommand exec" -s w -l workdir -d 'The command\'s working directory inside (default: the container\'s); it must exist' -r -F
complete -c unshare-run -n "__fish_unshare_run_using_subcommand exec" -s e -l env -d 'Set an environment variable (repeatable), over the container\'s environment' -r
complete -c unshare-run -n "__fish_unshare_run_using_subcommand exec" -s i -l interactive -d 'Pass stdin on to the command (without it, its stdin is /dev/null)'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand exec" -s t -l tty -d 'Give the command a terminal of the container\'s own (a pseudo-terminal of its devpts, relayed to yours, which is in raw mode meanwhile with -i), as its controlling terminal: job control works, and nothing it does reaches your terminal but its output'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand exec" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand logs" -s f -l follow -d 'Go on showing new output until the container ends'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand logs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand stop" -s t -l time -d 'Seconds to wait before SIGKILL (0: SIGKILL at once)' -r
complete -c unshare-run -n "__fish_unshare_run_using_subcommand stop" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand kill" -s s -l signal -d 'The signal: a name (KILL, SIGTERM, any case) or a number' -r
complete -c unshare-run -n "__fish_unshare_run_using_subcommand kill" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand start" -s a -l attach -d 'Follow the container\'s output until it ends; unshare-run\'s exit status is then its status (one container only; stdin is not passed on)'
complete -c unshare-run -n "__fish_unshare_run_using_subcommand start" -s h -l help -d 'Print help (see more with \'--help\')'
