// An ACP agent on the official TypeScript SDK (@agentclientprotocol/sdk),
// used by crates/berth/tests/agents.rs to show berth's gateway works with
// an implementation other than its own. A prompt streams three chunks,
// asks the client for a permission, reads a file through fs/read_text_file
// and runs `echo` through terminal/*, reporting each in a chunk.
import { Readable, Writable } from "node:stream";
import { agent, methods, ndJsonStream, PROTOCOL_VERSION } from "@agentclientprotocol/sdk";

let next = 0;
const say = (client, sessionId, text) =>
  client.notify(methods.client.session.update, {
    sessionId,
    update: { sessionUpdate: "agent_message_chunk", content: { type: "text", text } },
  });

const app = agent({ name: "berth-ts-agent" })
  .onRequest(methods.agent.initialize, () => ({
    protocolVersion: PROTOCOL_VERSION,
    agentCapabilities: { loadSession: false },
  }))
  .onRequest(methods.agent.session.new, () => ({ sessionId: `ts-${process.pid}-${next++}` }))
  .onRequest(methods.agent.session.prompt, async ({ params, client }) => {
    const sid = params.sessionId;
    const text = params.prompt.filter((b) => b.type === "text").map((b) => b.text).join("");
    for (let i = 0; i < 3; i++) await say(client, sid, `ts chunk ${i}\n`);
    const perm = await client.request(methods.client.session.requestPermission, {
      sessionId: sid,
      toolCall: { toolCallId: "ts-1", title: "read a file" },
      options: [{ optionId: "yes", name: "Yes", kind: "allow_once" }],
    });
    await say(client, sid, `ts permission: ${perm.outcome.outcome}`);
    const file = await client.request(methods.client.fs.readTextFile, { sessionId: sid, path: text.trim() });
    await say(client, sid, `ts read: ${file.content.trim()}`);
    const t = await client.request(methods.client.terminal.create, {
      sessionId: sid, command: "echo", args: ["ts-terminal"],
    });
    const exit = await client.request(methods.client.terminal.waitForExit, { sessionId: sid, terminalId: t.terminalId });
    const out = await client.request(methods.client.terminal.output, { sessionId: sid, terminalId: t.terminalId });
    await client.request(methods.client.terminal.release, { sessionId: sid, terminalId: t.terminalId });
    await say(client, sid, `ts terminal: ${exit.exitCode} ${out.output.trim()}`);
    return { stopReason: "end_turn" };
  })
  .onNotification(methods.agent.session.cancel, () => {});

app.connect(ndJsonStream(Writable.toWeb(process.stdout), Readable.toWeb(process.stdin)));
