//! What the shell completions add to clap_complete's scripts: the values of a positional that
//! has them (fish), and the minion ids of the local key store where an argument takes them
//! (bash, zsh, fish). clap's static generators only list fixed values, so the ids come from a
//! small shell function that runs `salt-key -l STATE` when completing; the scripts stay the
//! same for the same clap definition, so the committed ones can be checked for staleness.

use std::io::{Error, Write};

/// The value names of arguments that take minion ids, and the key state (`salt-key -l`) their
/// candidates come from: a target names minions that receive jobs, so accepted ones;
/// `salt-key`'s actions take keys in any state.
const MINION_ID_VALUES: [(&str, &str); 2] = [("TARGET", "acc"), ("ID", "all")];

/// The key state whose ids `arg` takes, if it takes minion ids.
fn minion_id_state(arg: &clap::Arg) -> Option<&'static str> {
    let names = arg.get_value_names()?;
    MINION_ID_VALUES
        .into_iter()
        .find(|(value, _)| names.iter().any(|name| name.as_str() == *value))
        .map(|(_, state)| state)
}

/// The first positional, with the key state of its ids, when it takes minion ids (`salt`'s
/// TARGET); later positionals never do.
fn first_positional_ids(command: &clap::Command) -> Option<(&clap::Arg, &'static str)> {
    let first = command.get_positionals().next()?;
    minion_id_state(first).map(|state| (first, state))
}

/// The options that take minion ids, with the key state of their ids.
fn option_ids(command: &clap::Command) -> Vec<(&clap::Arg, &'static str)> {
    command
        .get_opts()
        .filter_map(|arg| minion_id_state(arg).map(|state| (arg, state)))
        .collect()
}

/// Every spelling of an option on the command line: `-s`, `--long` and their aliases.
fn spellings(arg: &clap::Arg) -> Vec<String> {
    let shorts = arg
        .get_short()
        .into_iter()
        .chain(arg.get_all_short_aliases().unwrap_or_default())
        .map(|short| format!("-{short}"));
    let longs = arg
        .get_long()
        .into_iter()
        .chain(arg.get_all_aliases().unwrap_or_default())
        .map(|long| format!("--{long}"));
    shorts.chain(longs).collect()
}

/// An error for a clap script whose shape changed, so that generating fails loudly instead
/// of leaving the ids out.
fn unexpected(shell: &str, what: &str) -> Error {
    Error::other(format!(
        "clap_complete's {shell} script has no {what}: update src/cli/completion.rs"
    ))
}

/// Offers the values of the first positional that has them (`salt-run`'s and `salt-call`'s
/// FUNCTION, `salt`'s after TARGET) at its place, with their help: clap's fish script
/// completes no positional's values.
pub(super) fn fish_positional(
    command: &clap::Command,
    name: &str,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    let Some((index, arg)) = command
        .get_positionals()
        .enumerate()
        .find(|(_, arg)| !arg.get_possible_values().is_empty())
    else {
        return Ok(());
    };
    // fish's own test for "the Nth word that is not an option".
    let condition = match index {
        0 => "__fish_is_first_arg".to_owned(),
        n => format!("'__fish_is_nth_token {}'", n + 1),
    };
    for value in arg
        .get_possible_values()
        .iter()
        .filter(|value| !value.is_hide_set())
    {
        write!(
            out,
            "complete -c {name} -n {condition} -f -a {}",
            fish_quote(value.get_name())
        )?;
        if let Some(help) = value.get_help() {
            write!(out, " -d {}", fish_quote(&help.to_string()))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn fish_quote(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Offers the minion ids of the local key store (`salt-key -l STATE`, its headings left out)
/// for the arguments that take them: fish runs a command for its candidates.
pub(super) fn fish_minion_ids(
    command: &clap::Command,
    name: &str,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    let ids = |state: &str| format!("'(salt-key -l {state} 2>/dev/null | string match -v \\*:)'");
    if let Some((_, state)) = first_positional_ids(command) {
        writeln!(
            out,
            "complete -c {name} -n __fish_is_first_arg -f -a {}",
            ids(state)
        )?;
    }
    for (arg, state) in option_ids(command) {
        write!(out, "complete -c {name}")?;
        if let Some(short) = arg.get_short() {
            write!(out, " -s {short}")?;
        }
        if let Some(long) = arg.get_long() {
            write!(out, " -l {long}")?;
        }
        writeln!(out, " -x -a {}", ids(state))?;
    }
    Ok(())
}

/// The bash function that lists ids. Candidates are matched as plain text, never through
/// `compgen -W`, which would expand `$(...)` in a pending key's file name.
const BASH_IDS: &str = r#"
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
"#;

/// Wraps clap's bash completion function in one that offers minion ids where the command takes
/// them: after an option that takes ids, and at the first positional when it does (found by
/// skipping options and the values of those that take one). Elsewhere clap's function answers.
pub(super) fn bash_minion_ids(command: &clap::Command, out: &mut Vec<u8>) -> std::io::Result<()> {
    let positional = first_positional_ids(command);
    let options = option_ids(command);
    if positional.is_none() && options.is_empty() {
        return Ok(());
    }
    let script = String::from_utf8_lossy(out).into_owned();
    let clap_function = script
        .split_once("complete -F ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .ok_or_else(|| unexpected("bash", "`complete -F` line"))?
        .to_owned();
    let wrapper = format!("{clap_function}_with_minion_ids");
    let mut text = script.replace(
        &format!("complete -F {clap_function} "),
        &format!("complete -F {wrapper} "),
    );
    text.push_str(BASH_IDS);
    text.push_str(&format!(
        "\n# Minion ids where {} takes them, clap's completion elsewhere.\n",
        command.get_name()
    ));
    text.push_str(&format!(
        "{wrapper}() {{\n    local cur=\"${{COMP_WORDS[COMP_CWORD]}}\"\n"
    ));
    if !options.is_empty() {
        text.push_str("    case \"${COMP_WORDS[COMP_CWORD-1]}\" in\n");
        let mut states: Vec<&str> = options.iter().map(|(_, state)| *state).collect();
        states.dedup();
        for state in states {
            let words: Vec<String> = options
                .iter()
                .filter(|(_, s)| *s == state)
                .flat_map(|(arg, _)| spellings(arg))
                .collect();
            text.push_str(&format!(
                "        {})\n            _halite_minion_ids {state} \"$cur\"\n            return 0\n            ;;\n",
                words.join("|")
            ));
        }
        text.push_str("    esac\n");
    }
    if let Some((_, state)) = positional {
        let takes_value: Vec<String> = command.get_opts().flat_map(spellings).collect();
        // bash splits `--out=json` into `--out`, `=` and `json`. An option's value being
        // completed (`i` set to -1) is clap's to complete.
        text.push_str(&format!(
            r#"    if [[ $cur != -* ]]; then
        local i
        for (( i = 1; i < COMP_CWORD; i++ )); do
            case "${{COMP_WORDS[i]}}" in
                =) (( ++i < COMP_CWORD )) || {{ i=-1; break; }} ;;
                {}) [[ ${{COMP_WORDS[i+1]}} == = ]] || (( ++i < COMP_CWORD )) || {{ i=-1; break; }} ;;
                -*) ;;
                *) break ;;
            esac
        done
        if (( i >= COMP_CWORD )); then
            _halite_minion_ids {state} "$cur"
            return 0
        fi
    fi
"#,
            takes_value.join("|")
        ));
    }
    text.push_str(&format!("    {clap_function} \"$@\"\n}}\n"));
    *out = text.into_bytes();
    Ok(())
}

/// The zsh function that offers ids, defined once whichever script loads first. `_arguments`
/// calls an action with its compadd options (group, description) before the action's own
/// words, so the key state comes last.
const ZSH_IDS: &str = r#"
# Offers the minion ids of the local key store in the key state (salt-key -l) given last, from
# the config dir the line names (-c DIR) if it names one.
(( $+functions[_halite_minion_ids] )) ||
_halite_minion_ids() {
    local -a ids config
    local dir=${opt_args[-c]:-${opt_args[--config-dir]}}
    [[ -n $dir ]] && config=(-c ${(Q)dir})
    ids=(${(f)"$(salt-key $config -l ${@[-1]} 2>/dev/null)"})
    compadd "${@[1,-2]}" -- ${ids:#*:}
}
"#;

/// Points the `_arguments` specs of the arguments that take minion ids at a function that
/// offers them, instead of `_default`.
pub(super) fn zsh_minion_ids(command: &clap::Command, out: &mut Vec<u8>) -> std::io::Result<()> {
    let positional = first_positional_ids(command);
    let options = option_ids(command);
    if positional.is_none() && options.is_empty() {
        return Ok(());
    }
    let script = String::from_utf8_lossy(out).into_owned();
    const DEFAULT: &str = ":_default' \\";
    let mut text = String::with_capacity(script.len() + ZSH_IDS.len());
    let mut replaced = Vec::new();
    for line in script.split_inclusive('\n') {
        let spec = line.trim_end_matches('\n');
        // An option's spec holds `-s+[` or `--long=[` and ends `:VALUE:_default'`; a
        // positional's starts `'[*]:[:]id -- ` or `'[*]:[:]id:`.
        let state = options
            .iter()
            .find(|(arg, _)| {
                spec.ends_with(DEFAULT)
                    && spellings(arg).iter().any(|spelling| {
                        let open = if spelling.starts_with("--") {
                            "=["
                        } else {
                            "+["
                        };
                        spec.contains(&format!("{spelling}{open}"))
                    })
            })
            .map(|(arg, state)| (arg.get_id(), *state))
            .or_else(|| {
                positional.and_then(|(arg, state)| {
                    let rest = spec.strip_prefix('\'')?.trim_start_matches(['*', ':']);
                    let named = rest
                        .strip_prefix(arg.get_id().as_str())
                        .is_some_and(|after| after.starts_with([' ', ':']));
                    (named && spec.ends_with(DEFAULT)).then_some((arg.get_id(), state))
                })
            });
        match state {
            Some((id, state)) => {
                let kept = &spec[..spec.len() - DEFAULT.len()];
                text.push_str(&format!(
                    "{kept}:_halite_minion_ids {state}' \\{}",
                    &line[spec.len()..]
                ));
                replaced.push(id);
            }
            None => text.push_str(line),
        }
        if line == "autoload -U is-at-least\n" {
            text.push_str(ZSH_IDS);
        }
    }
    if !text.contains(ZSH_IDS) {
        return Err(unexpected("zsh", "`autoload -U is-at-least` line"));
    }
    for arg in positional
        .map(|(arg, _)| arg)
        .into_iter()
        .chain(options.iter().map(|(arg, _)| *arg))
    {
        if !replaced.contains(&arg.get_id()) {
            return Err(unexpected(
                "zsh",
                &format!("`_default` spec for {}", arg.get_id()),
            ));
        }
    }
    *out = text.into_bytes();
    Ok(())
}
