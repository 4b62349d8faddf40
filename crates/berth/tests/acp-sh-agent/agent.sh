#!/bin/sh
# A minimal ACP agent (JSON-RPC 2.0, one message per line on stdio) in
# POSIX sh, for berth's gateway tests where the Rust test agent cannot run:
# inside the busybox test image (no libc) and as an agent that stops
# reading its stdin. It understands just what berth sends: `initialize`,
# `session/new`, `session/prompt` (answers to its own requests are read
# and ignored). A prompt's text picks the behaviour:
#   where     one chunk "where: dir=$PWD uid=$(id -u) readme=<first line
#             of ./README.md>" (where and as whom the agent runs)
#   deaf N S  N `session/request_permission` requests, then S seconds of
#             not reading stdin, then the end of the turn
#   other     one chunk "sh echo"
sid="sh-$$"
chunk() {
    printf '{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"%s","update":{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"%s"}}}}\n' "$sid" "$1"
}
idof() { printf '%s\n' "$1" | sed -n 's/.*"id":\([0-9][0-9]*\).*/\1/p'; }
while IFS= read -r line; do
    # Answers to this agent's own requests carry no method: skipped.
    case "$line" in
    *'"method":"initialize"'*|*'"method":"session/new"'*|*'"method":"session/prompt"'*)
        id=$(idof "$line") ;;
    esac
    case "$line" in
    *'"method":"initialize"'*)
        printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":1,"agentCapabilities":{}}}\n' "$id"
        ;;
    *'"method":"session/new"'*)
        printf '{"jsonrpc":"2.0","id":%s,"result":{"sessionId":"%s"}}\n' "$id" "$sid"
        ;;
    *'"method":"session/prompt"'*)
        text=$(printf '%s\n' "$line" | sed -n 's/.*"text":"\([^"]*\)".*/\1/p')
        set -- $text
        case "$1" in
        where)
            readme=$(head -n 1 README.md 2>/dev/null)
            chunk "where: dir=$PWD uid=$(id -u) readme=$readme"
            ;;
        deaf)
            i=0
            while [ "$i" -lt "$2" ]; do
                printf '{"jsonrpc":"2.0","id":%s,"method":"session/request_permission","params":{"sessionId":"%s","toolCall":{"toolCallId":"c%s"},"options":[{"optionId":"allow","name":"Allow","kind":"allow_once"}]}}\n' "$((100000 + i))" "$sid" "$i"
                i=$((i + 1))
            done
            sleep "$3"
            chunk "deaf: done"
            ;;
        *) chunk "sh echo" ;;
        esac
        printf '{"jsonrpc":"2.0","id":%s,"result":{"stopReason":"end_turn"}}\n' "$id"
        ;;
    esac
done
