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
            opts="-c -l -V -E -L -G -P -C -I -J -S -N -b -t -v -h --config-dir --log-level --generate --version --versions-report --output --out --no-colour --no-color --force-colour --force-color --state_output --state-output --state_verbose --state-verbose --output-indent --out-indent --output-file --out-file --output-file-append --out-file-append --return --return_config --return_kwargs --no-parse --pcre --list --grain --grain-pcre --compound --pillar --pillar-pcre --ipcidr --nodegroup --batch --batch-wait --failhard --timeout --async --verbose --show-jid --hide-timeout --static --help"
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
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --output)
                    COMPREPLY=($(compgen -f "${cur}"))
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
    complete -F _salt -o nosort -o bashdefault -o default salt
else
    complete -F _salt -o bashdefault -o default salt
fi
