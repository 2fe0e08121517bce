_salt__key() {
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
                cmd="salt__key"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        salt__key)
            opts="-c -V -l -L -a -A -r -R -d -D -f -F -p -P -y -h --config-dir --log-level --generate --version --versions-report --list --list-all --accept --accept-all --reject --reject-all --delete --delete-all --finger --finger-all --print --print-all --gen-keys --gen-keys-dir --keysize --yes --include-accepted --include-rejected --include-denied --include-all --output --out --no-colour --no-color --force-colour --force-color --output-indent --out-indent --output-file --out-file --output-file-append --out-file-append --help"
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
                --generate)
                    COMPREPLY=($(compgen -W "man bash zsh fish" -- "${cur}"))
                    return 0
                    ;;
                --list)
                    COMPREPLY=($(compgen -W "acc accepted pre un unaccepted rej rejected den denied all" -- "${cur}"))
                    return 0
                    ;;
                -l)
                    COMPREPLY=($(compgen -W "acc accepted pre un unaccepted rej rejected den denied all" -- "${cur}"))
                    return 0
                    ;;
                --accept)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -a)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --reject)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -r)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --delete)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -d)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --finger)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -f)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --print)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -p)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --gen-keys)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --gen-keys-dir)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --keysize)
                    COMPREPLY=($(compgen -f "${cur}"))
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
    complete -F _salt__key_with_minion_ids -o nosort -o bashdefault -o default salt-key
else
    complete -F _salt__key_with_minion_ids -o bashdefault -o default salt-key
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

# Minion ids where salt-key takes them, clap's completion elsewhere.
_salt__key_with_minion_ids() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    case "${COMP_WORDS[COMP_CWORD-1]}" in
        -a|--accept|-r|--reject|-d|--delete|-f|--finger|-p|--print)
            _halite_minion_ids all "$cur"
            return 0
            ;;
    esac
    _salt__key "$@"
}
