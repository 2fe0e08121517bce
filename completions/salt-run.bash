_salt__run() {
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
                cmd="salt__run"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        salt__run)
            opts="-c -l -V -d -h --config-dir --log-level --generate --version --versions-report --output --out --no-colour --no-color --force-colour --force-color --state_output --state-output --state_verbose --state-verbose --output-indent --out-indent --output-file --out-file --output-file-append --out-file-append --no-parse --documentation --doc --help state.event event.bench reactor.dry_run event.send http.query jobs.active jobs.list_job jobs.list_jobs jobs.lookup_jid jobs.print_job manage.alived manage.allowed manage.down manage.joined manage.list_not_state manage.list_state manage.not_alived manage.not_allowed manage.not_joined manage.not_present manage.not_reaped manage.present manage.reaped manage.status manage.up manage.versions reactor.list ret.get_fun ret.get_jid ret.get_jids ret.get_minions ret.stats test.arg test.sleep"
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
                --no-parse)
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
    complete -F _salt__run -o nosort -o bashdefault -o default salt-run
else
    complete -F _salt__run -o bashdefault -o default salt-run
fi
