# shellcheck shell=bash
# Progress line for tools/bench.sh and tools/mhfa-tune (sourced, bash).
#
#   progress_run STEP CMD...
#
# Runs CMD. When stderr is a terminal, one line there reads "NAME: [CASE  ]STEP  N s" (NAME: the
# script, N: seconds since it started), redrawn each second and cleared when CMD ends. CMD's
# stderr, and its stdout when that is the terminal too, is printed above that line; a
# "[tool] CASE: ..." line from it names the case shown. When stderr is not a terminal, CMD runs
# as it would without this. Returns CMD's status.

progress_name="$(basename "$0" .sh)"

# Prints the lines read on stdin above the progress line; redraws that line at least each second.
progress_lines() {
    local step="$1" case="" line="" partial=""
    while :; do
        printf '\r\033[K%s: %s%s  %d s' "$progress_name" "${case:+$case  }" "$step" "$SECONDS" >&2
        if IFS= read -r -t 1 line; then
            line="$partial$line" partial=""
            if [[ "$line" =~ ^\[[^]]+\]\ ([^ :]+): ]]; then case="${BASH_REMATCH[1]}"; fi
            printf '\r\033[K%s\n' "$line" >&2
        elif (( $? > 128 )); then
            partial+="$line" # timed out inside a line: keep the start, wait for the rest
        else
            break
        fi
    done
    partial+="$line"
    printf '\r\033[K%s' "${partial:+$partial$'\n'}" >&2
}

progress_run() {
    local step="$1" rc=0
    shift
    if [[ ! -t 2 ]]; then
        "$@"
        return
    fi
    if [[ -t 1 ]]; then
        "$@" 2>&1 | progress_lines "$step"
        rc=${PIPESTATUS[0]}
    else
        { "$@" 2>&1 >&3 3>&- | progress_lines "$step"; rc=${PIPESTATUS[0]}; } 3>&1
    fi
    return "$rc"
}
