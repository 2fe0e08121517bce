_salt() {
    local i cur prev opts cmd
    COMPREPLY=()
    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
        cur="$2"
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
    fi
    prev="$3"
    cmd=""
    opts=""

    for i in "${COMP_WORDS[@]:0:COMP_CWORD}"
    do
        case "${cmd},${i}" in
            ",$1")
                cmd="salt"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        salt)
            opts="-c -l -V -E -L -G -P -C -I -J -S -N -b -t -v -h --config-dir --log-level --generate --version --versions-report --output --out --no-colour --no-color --force-colour --force-color --state_output --state-output --state_verbose --state-verbose --output-indent --out-indent --output-file --out-file --output-file-append --out-file-append --return --return_config --return_kwargs --no-parse --pcre --list --grain --grain-pcre --compound --pillar --pillar-pcre --ipcidr --nodegroup --batch --batch-wait --failhard --timeout --async --verbose --show-jid --hide-timeout --static --help beacons.add beacons.delete beacons.disable beacons.disable_beacon beacons.enable beacons.enable_beacon beacons.list beacons.list_available beacons.modify beacons.reset beacons.save cmd.retcode cmd.run cmd.run_all cp.cache_file cp.cache_files cp.envs cp.get_dir cp.get_file cp.get_file_str cp.hash_file cp.list_master cp.list_master_dirs event.fire event.fire_master event.send file.directory_exists file.file_exists file.get_hash file.read file.remove file.write grains.get grains.item grains.items group.add group.adduser group.chgid group.delete group.deluser group.info group.members pillar.get pillar.item pillar.items pillar.keys pillar.ls pillar.raw pkg.install pkg.latest_version pkg.list_pkgs pkg.purge pkg.refresh_db pkg.remove pkg.version saltutil.find_job saltutil.kill_job saltutil.refresh_pillar saltutil.running saltutil.signal_job saltutil.term_job schedule.add schedule.delete schedule.disable schedule.disable_job schedule.enable schedule.enable_job schedule.list schedule.modify schedule.run_job schedule.save schedule.show_next_fire_time service.available service.disable service.disabled service.enable service.enabled service.reload service.restart service.start service.status service.stop state.apply state.highstate state.running state.show_highstate state.show_low_sls state.show_sls state.show_top state.single state.sls state.sls_id state.top sys.argspec sys.doc sys.list_functions sys.list_modules sys.list_runners test.arg test.echo test.false test.ping test.retcode test.sleep test.true test.version user.add user.chfullname user.chgid user.chgroups user.chhome user.chshell user.chuid user.delete user.info"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --config-dir)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -c)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --log-level)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -l)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --generate)
                    COMPREPLY=($(compgen -W "man bash zsh fish" -- "${cur}"))
                    return 0
                    ;;
                --out)
                    COMPREPLY=($(compgen -W "nested json yaml txt raw quiet highstate" -- "${cur}"))
                    return 0
                    ;;
                --output)
                    COMPREPLY=($(compgen -W "nested json yaml txt raw quiet highstate" -- "${cur}"))
                    return 0
                    ;;
                --state-output)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --state_output)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --state-verbose)
                    COMPREPLY=($(compgen -W "True true False false" -- "${cur}"))
                    return 0
                    ;;
                --state_verbose)
                    COMPREPLY=($(compgen -W "True true False false" -- "${cur}"))
                    return 0
                    ;;
                --out-indent)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --output-indent)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --out-file)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --output-file)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --return)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --return_config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --return_kwargs)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --no-parse)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --batch)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -b)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --batch-wait)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -t)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
    esac
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _salt_with_minion_ids -o nosort -o bashdefault -o default salt
else
    complete -F _salt_with_minion_ids -o bashdefault -o default salt
fi

# Completes minion ids of the local key store in key state $1 (salt-key -l) that start with $2,
# from the config dir the line names (-c DIR, --config-dir[=]DIR) if it names one.
_halite_minion_ids() {
    local id i
    local -a config=()
    for (( i = 1; i < COMP_CWORD - 1; i++ )); do
        case "${COMP_WORDS[i]}" in
            -c|--config-dir)
                [[ ${COMP_WORDS[i+1]} == = ]] && (( i++ ))
                config=(-c "${COMP_WORDS[i+1]}")
                ;;
        esac
    done
    COMPREPLY=()
    while IFS= read -r id; do
        [[ $id == *: || $id != "$2"* ]] || COMPREPLY+=("$id")
    done < <(salt-key "${config[@]}" -l "$1" 2>/dev/null)
}

# Minion ids where salt takes them, clap's completion elsewhere.
_salt_with_minion_ids() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    if [[ $cur != -* ]]; then
        local i
        for (( i = 1; i < COMP_CWORD; i++ )); do
            case "${COMP_WORDS[i]}" in
                =) (( ++i < COMP_CWORD )) || { i=-1; break; } ;;
                -c|--config-dir|-l|--log-level|--generate|--out|--output|--state-output|--state_output|--state-verbose|--state_verbose|--out-indent|--output-indent|--out-file|--output-file|--return|--return_config|--return_kwargs|--no-parse|-b|--batch|--batch-size|--batch-wait|-t|--timeout) [[ ${COMP_WORDS[i+1]} == = ]] || (( ++i < COMP_CWORD )) || { i=-1; break; } ;;
                -*) ;;
                *) break ;;
            esac
        done
        if (( i >= COMP_CWORD )); then
            _halite_minion_ids acc "$cur"
            return 0
        fi
    fi
    _salt "$@"
}
