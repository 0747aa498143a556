/**
 * The agent-loop benchmark's client variants: each sets a client up against the server's URL
 * and returns one run of the five-step tool loop (`server.ts` plays the model's side). This
 * module is what a child process loads, so it loads no client library until a variant asks.
 */
export const toolSteps = 4
export const steps = toolSteps + 1

export const variants = ["floor", "effectFloor", "ours", "routed", "aisdk", "aisdkStream"] as const
export type Variant = (typeof variants)[number]

export const labels: Record<Variant, string> = {
  floor: "floor (fetch)",
  effectFloor: "our stack's floor",
  ours: "ours (Agent.run)",
  routed: "ours, TierRouter",
  aisdk: "AI SDK generateText",
  aisdkStream: "AI SDK streamText"
}

// ---------------------------------------------------------------- clients

export type RunOnce = () => Promise<void>

export interface Client {
  readonly runOnce: RunOnce
  /** Runs once more, failing unless the run made all `steps` model calls and ended with the answer. */
  readonly check: () => Promise<void>
}

const addSchema = {
  type: "object",
  properties: { a: { type: "number" }, b: { type: "number" } },
  required: ["a", "b"],
  additionalProperties: false
}

const floorTools = [{ type: "function", function: { name: "add", description: "Adds a and b.", parameters: addSchema } }]
const floorBody = (messages: ReadonlyArray<Record<string, unknown>>) =>
  JSON.stringify({ model: "bench", messages, tools: floorTools, stream: true, stream_options: { include_usage: true } })

const expectSteps = (variant: string, made: number, text: string) => {
  if (made !== steps || !text.includes("4.")) {
    throw new Error(`${variant}: a run made ${made} model calls (expected ${steps}) and answered ${JSON.stringify(text)}`)
  }
}

/**
 * One exchange of the floors: reads a streamed answer, parsing only what it must, and appends
 * the assistant's tool calls and their results to `messages`; `false` when the model is done.
 */
const floorStep = (messages: Array<Record<string, unknown>>, text: string): boolean => {
  let content = ""
  const calls: Array<{ id: string; name: string; args: string }> = []
  for (const line of text.split("\n")) {
    if (!line.startsWith("data: ") || line === "data: [DONE]") continue
    const delta = JSON.parse(line.slice(6)).choices?.[0]?.delta
    if (delta?.content) content += delta.content
    for (const fragment of delta?.tool_calls ?? []) {
      const call = calls[fragment.index] ??= { id: fragment.id, name: fragment.function.name, args: "" }
      call.args += fragment.function?.arguments ?? ""
    }
  }
  if (calls.length === 0) {
    messages.push({ role: "assistant", content })
    return false
  }
  messages.push({
    role: "assistant",
    content: content || null,
    tool_calls: calls.map((call) => ({ id: call.id, type: "function", function: { name: call.name, arguments: call.args } }))
  })
  for (const call of calls) {
    const { a, b } = JSON.parse(call.args)
    messages.push({ role: "tool", tool_call_id: call.id, content: JSON.stringify({ sum: a + b }) })
  }
  return true
}

/** What a floor's finished conversation shows: model calls made, and the last answer. */
const floorOutcome = (messages: ReadonlyArray<Record<string, unknown>>) => ({
  made: messages.filter((message) => message.role === "assistant").length,
  text: String(messages.at(-1)?.content ?? "")
})

const floorClient = (url: string): Client => {
  const run = async () => {
    const messages: Array<Record<string, unknown>> = [{ role: "user", content: "Add the numbers." }]
    for (let step = 0; step < 10; step++) {
      const response = await fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer bench" },
        body: floorBody(messages)
      })
      if (!floorStep(messages, await response.text())) break
    }
    return messages
  }
  return {
    runOnce: async () => void (await run()),
    check: async () => {
      const { made, text } = floorOutcome(await run())
      expectSteps("floor", made, text)
    }
  }
}

/**
 * The floor of our stack, without any kernel code: the same exchanges as the fetch floor, made
 * by the platform's `HttpClient` (`NodeHttpClient.layerUndici`, what the kernel's providers use)
 * inside an Effect `Stream` (one element per exchange) run by `Stream.runDrain`, as `Agent.run`'s
 * stream is. DESIGN.md names both (the platform client; a run as a `Stream`), so what this costs,
 * the kernel cannot go below.
 */
const effectFloorClient = async (url: string): Promise<Client> => {
  const [{ NodeHttpClient }, Effect, ManagedRuntime, Option, Stream, HttpClient, HttpClientRequest] = await Promise.all([
    import("@effect/platform-node"),
    import("effect/Effect"),
    import("effect/ManagedRuntime"),
    import("effect/Option"),
    import("effect/Stream"),
    import("@effect/platform/HttpClient"),
    import("@effect/platform/HttpClientRequest")
  ])
  const runtime = ManagedRuntime.make(NodeHttpClient.layerUndici)
  const client = await runtime.runPromise(HttpClient.HttpClient)
  const post = HttpClientRequest.post(`${url}/v1/chat/completions`).pipe(HttpClientRequest.bearerToken("bench"))
  const run = (messages: Array<Record<string, unknown>>) =>
    Stream.runDrain(Stream.unfoldEffect(true, (more) =>
      more
        ? Effect.map(
          Effect.flatMap(client.execute(HttpClientRequest.bodyText(post, floorBody(messages), "application/json")), (response) => response.text),
          (text) => Option.some([text.length, floorStep(messages, text)] as const)
        )
        : Effect.succeed(Option.none())
    ))
  const start = () => [{ role: "user", content: "Add the numbers." }]
  return {
    runOnce: () => runtime.runPromise(run(start())),
    check: async () => {
      const messages = start()
      await runtime.runPromise(run(messages))
      const { made, text } = floorOutcome(messages)
      expectSteps("effectFloor", made, text)
    }
  }
}

/** The local tool both of our variants offer. */
const addTool = async () => {
  const [Effect, Schema, LocalTools] = await Promise.all([
    import("effect/Effect"),
    import("effect/Schema"),
    import("effect-agent-kernel/LocalTools")
  ])
  return LocalTools.tool({
    name: "add",
    description: "Adds a and b.",
    parameters: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
    handler: ({ a, b }) => Effect.succeed({ sum: a + b })
  })
}

/** What one of our runs emitted: model calls (a `content-complete` per step) and the final answer. */
const agentOutcome = (events: Iterable<{ readonly type: string }>) => {
  let made = 0
  let text = ""
  for (const event of events) {
    if (event.type === "content-complete") made++
    if (event.type === "task-complete") text = String((event as { content?: unknown }).content ?? "")
  }
  return { made, text }
}

const oursClient = async (url: string): Promise<Client> => {
  const [{ NodeHttpClient }, Effect, Layer, ManagedRuntime, Redacted, Stream, Agent, LocalTools, OpenAiCompatible, Toolbox] =
    await Promise.all([
      import("@effect/platform-node"),
      import("effect/Effect"),
      import("effect/Layer"),
      import("effect/ManagedRuntime"),
      import("effect/Redacted"),
      import("effect/Stream"),
      import("effect-agent-kernel/Agent"),
      import("effect-agent-kernel/LocalTools"),
      import("effect-agent-kernel/OpenAiCompatible"),
      import("effect-agent-kernel/Toolbox")
    ])
  const add = await addTool()
  const live = Layer.mergeAll(
    OpenAiCompatible.liteLLMProvider({ model: "bench", baseUrl: url, apiKey: Redacted.make("bench") }),
    Toolbox.layer([LocalTools.localTools([add])])
  ).pipe(Layer.provide(NodeHttpClient.layerUndici))
  const runtime = ManagedRuntime.make(live)
  await runtime.runPromise(Effect.void)
  const run = () => Agent.run({ prompt: "Add the numbers.", maxSteps: 10 })
  return {
    runOnce: () => runtime.runPromise(Stream.runDrain(run())),
    check: async () => {
      const { made, text } = agentOutcome(await runtime.runPromise(Stream.runCollect(run())))
      expectSteps("ours", made, text)
    }
  }
}

// The same agent with the model chosen by the TierRouter (config in memory, the litellm plugin
// on every tier): what `scripts/chat.ts` runs. No peer has an equivalent; it is compared with ours.
const routedClient = async (url: string): Promise<Client> => {
  const [{ NodeHttpClient }, Effect, Layer, ManagedRuntime, Stream, agent, local, toolbox, config, secrets, plugins, builtin, classifier, router] =
    await Promise.all([
      import("@effect/platform-node"),
      import("effect/Effect"),
      import("effect/Layer"),
      import("effect/ManagedRuntime"),
      import("effect/Stream"),
      import("effect-agent-kernel/Agent"),
      import("effect-agent-kernel/LocalTools"),
      import("effect-agent-kernel/Toolbox"),
      import("effect-agent-kernel/ConfigManager"),
      import("effect-agent-kernel/SecretsManager"),
      import("effect-agent-kernel/ProviderPlugin"),
      import("effect-agent-kernel/BuiltinPlugins"),
      import("effect-agent-kernel/QueryClassifier"),
      import("effect-agent-kernel/TierRouter")
    ])
  const add = await addTool()
  const base = Layer.mergeAll(
    config.layerMemory({
      plugins: { enabled: ["litellm"] },
      routing: { tierMapping: { simple: "litellm", moderate: "litellm", complex: "litellm", reasoning: "litellm" } },
      providers: { litellm: { baseUrl: url, model: "bench" } }
    }),
    // The key, and the base URL it was paired for (a stored key is only sent where it was paired).
    secrets.layerMemoryWith({
      envFallback: false,
      initial: { "provider.litellm.apiKey": "bench", "provider.litellm.boundBaseUrl": url }
    }),
    NodeHttpClient.layerUndici
  )
  const registry = plugins.layer({ builtins: builtin.builtins }).pipe(Layer.provideMerge(base))
  const live = Layer.mergeAll(router.layer, toolbox.layer([local.localTools([add])])).pipe(
    Layer.provide(Layer.merge(registry, classifier.layer))
  )
  const runtime = ManagedRuntime.make(live)
  await runtime.runPromise(Effect.void)
  const run = () => agent.run({ prompt: "Add the numbers.", maxSteps: 10 })
  return {
    runOnce: () => runtime.runPromise(Stream.runDrain(run())),
    check: async () => {
      const { made, text } = agentOutcome(await runtime.runPromise(Stream.runCollect(run())))
      expectSteps("routed", made, text)
    }
  }
}

/** The AI SDK's model and tool, shared by its two variants. */
const aiSdkSetup = async (url: string) => {
  const { jsonSchema, stepCountIs, tool } = await import("ai")
  const { createOpenAI } = await import("@ai-sdk/openai")
  const model = createOpenAI({ baseURL: `${url}/v1`, apiKey: "bench" }).chat("bench")
  const tools = {
    add: tool({
      description: "Adds a and b.",
      inputSchema: jsonSchema<{ a: number; b: number }>(addSchema as never),
      execute: async ({ a, b }: { a: number; b: number }) => ({ sum: a + b })
    })
  }
  // Five steps at most, as ours. Retries as each library has them by default (the SDK's
  // maxRetries 2, the kernel's three attempts): the server closes a kept-alive connection idle
  // for 5 s, and a client whose event loop is saturated (a thousand runs at once) can send a
  // request on one just as it closes; each side then retries, as it would against a real server.
  // The server's request count per run says when that happened (above `steps`).
  return { model, tools, stopWhen: stepCountIs(steps), prompt: "Add the numbers." }
}

const aiSdkClient = async (url: string): Promise<Client> => {
  const { generateText } = await import("ai")
  const options = await aiSdkSetup(url)
  return {
    runOnce: async () => void (await generateText(options)),
    check: async () => {
      const result = await generateText(options)
      expectSteps("aisdk", result.steps.length, result.text)
    }
  }
}

/**
 * The AI SDK's streaming agent: `streamText` with the same tool and stop condition, its
 * `fullStream` (every part: text deltas, tool calls and results, step boundaries) read to the
 * end, as a consumer of `Agent.run` reads our stream. An error part fails the run, as an error
 * fails ours.
 */
const aiSdkStreamClient = async (url: string): Promise<Client> => {
  const { streamText } = await import("ai")
  const options = await aiSdkSetup(url)
  const run = async () => {
    let made = 0
    let text = ""
    for await (const part of streamText(options).fullStream) {
      if (part.type === "error" || part.type === "tool-error") throw part.error
      if (part.type === "finish-step") made++
      if (part.type === "text-delta") text += part.text
    }
    return { made, text }
  }
  return {
    runOnce: async () => void (await run()),
    check: async () => {
      const { made, text } = await run()
      expectSteps("aisdkStream", made, text)
    }
  }
}

export const makeClient = (variant: Variant, url: string): Promise<Client> => {
  switch (variant) {
    case "floor":
      return Promise.resolve(floorClient(url))
    case "effectFloor":
      return effectFloorClient(url)
    case "ours":
      return oursClient(url)
    case "routed":
      return routedClient(url)
    case "aisdk":
      return aiSdkClient(url)
    case "aisdkStream":
      return aiSdkStreamClient(url)
  }
}
