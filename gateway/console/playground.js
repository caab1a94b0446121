// The playground: chat with a model, rag/ pipeline or agent/ the key may use, streamed, with sources.

import { getJSON, streamChat } from "./api.js";
import { h } from "./dom.js";

function field(id, label, input) {
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input);
}

function number(name, attrs) {
  return h("input", { type: "number", name, inputmode: "decimal", ...attrs });
}

export function snippets(body) {
  const json = JSON.stringify({ ...body, stream: false }, null, 2);
  const base = `${location.origin}/v1`;
  const curl = `curl ${base}/chat/completions \\\n  -H "Authorization: Bearer $AIHUB_API_KEY" \\\n  -H "Content-Type: application/json" \\\n  -d '${json.replaceAll("'", "'\\''")}'`;
  const { model, messages, aihub, ...params } = body;
  delete params.stream;
  const kwargs = Object.entries(params).map(([k, v]) => `    ${k}=${JSON.stringify(v)},\n`).join("");
  const extra = aihub ? `    extra_body={"aihub": ${JSON.stringify(aihub)}},\n` : "";
  const python = `import os\n\nfrom openai import OpenAI\n\nclient = OpenAI(base_url="${base}", api_key=os.environ["AIHUB_API_KEY"])\n` +
    `completion = client.chat.completions.create(\n    model=${JSON.stringify(model)},\n    messages=${JSON.stringify(messages, null, 4).replaceAll("\n", "\n    ")},\n${kwargs}${extra})\nprint(completion.choices[0].message.content)\n`;
  return { curl, python };
}

function sources(citations) {
  return h("div", { class: "sources" }, h("h3", {}, "Sources"), citations.map((c, i) =>
    h("details", { class: "source" },
      h("summary", {}, `[${i + 1}] ${c.title || c.doc_id}`, c.source ? h("small", {}, ` ${c.source}`) : null),
      h("p", {}, c.snippet || ""),
      h("p", {}, h("small", {}, `doc ${c.doc_id} · score ${c.score ?? ""}`)))));
}

export async function playgroundPage(container, params, current) {
  const models = await getJSON("/v1/models");
  if (!current()) return;
  const ids = models.data.map((m) => m.id);
  if (params.model && !ids.includes(params.model)) ids.unshift(params.model);
  const model = h("select", { name: "model" }, ids.map((id) => h("option", { value: id, selected: id === params.model }, id)));
  const system = h("textarea", { name: "system", rows: 2, placeholder: "optional" });
  const temperature = number("temperature", { min: 0, max: 2, step: 0.1, placeholder: "default" });
  const topP = number("top_p", { min: 0, max: 1, step: 0.05, placeholder: "default" });
  const maxTokens = number("max_tokens", { min: 1, step: 1, placeholder: "default" });
  const topK = number("top_k", { min: 1, max: 100, step: 1, placeholder: "pipeline's" });
  const message = h("textarea", { name: "message", rows: 3, required: true });
  const transcript = h("ol", { class: "transcript", id: "transcript", "aria-label": "Conversation" });
  const composition = h("p", { id: "composition", role: "status" });
  const exported = h("pre", { id: "export", tabindex: "0", hidden: true });
  const send = h("button", { type: "submit" }, "Send");
  const stop = h("button", { type: "button", disabled: true }, "Stop");
  const history = [];
  let controller = null;

  function body() {
    const messages = [...(system.value.trim() ? [{ role: "system", content: system.value.trim() }] : []), ...history];
    const request = { model: model.value, messages, stream: true };
    if (temperature.value !== "") request.temperature = Number(temperature.value);
    if (topP.value !== "") request.top_p = Number(topP.value);
    if (maxTokens.value !== "") request.max_tokens = Number(maxTokens.value);
    if (topK.value !== "") request.aihub = { top_k: Number(topK.value) };
    return request;
  }

  async function submit(event) {
    event.preventDefault();
    const text = message.value.trim();
    if (!text) return;
    history.push({ role: "user", content: text });
    message.value = "";
    transcript.append(h("li", { class: "user" }, h("span", { class: "who" }, "You"), h("p", {}, text)));
    const answer = h("p", { class: "answer" });
    const item = h("li", { class: "assistant", "aria-busy": "true" }, h("span", { class: "who" }, model.value), answer);
    transcript.append(item);
    controller = new AbortController();
    send.disabled = true; stop.disabled = false;
    let content = "";
    try {
      await streamChat(body(), {
        signal: controller.signal,
        onHead: (response) => {
          const digest = response.headers.get("x-aihub-composition");
          composition.replaceChildren(digest ? h("span", {}, "Composition digest ", h("code", { title: digest }, digest)) : "No composition (a plain model).");
        },
        onEvent: (chunk) => {
          if (chunk.citations?.length) item.append(sources(chunk.citations));
          const delta = chunk.choices?.[0]?.delta?.content;
          if (delta) { content += delta; answer.textContent = content; }
        },
      });
      history.push({ role: "assistant", content });
    } catch (error) {
      item.append(h("p", { class: "error", role: "alert" }, error.name === "AbortError" ? "Stopped." : error.message));
      if (content) history.push({ role: "assistant", content });
      else history.pop();
    } finally {
      item.removeAttribute("aria-busy");
      send.disabled = false; stop.disabled = true;
      message.focus();
    }
  }

  function show(kind) {
    exported.textContent = snippets(body())[kind];  // the session so far, with the parameters set
    exported.hidden = false;
    exported.dataset.kind = kind;
  }

  stop.addEventListener("click", () => controller?.abort());
  container.append(
    h("h1", {}, "Playground"),
    h("form", { class: "playground", id: "chat", onsubmit: submit },
      h("fieldset", { class: "params" }, h("legend", {}, "Parameters"),
        field("pg-model", "Model", model), field("pg-system", "System prompt", system),
        field("pg-temperature", "Temperature", temperature), field("pg-top-p", "top_p", topP),
        field("pg-max-tokens", "Max tokens", maxTokens), field("pg-top-k", "Documents (rag top_k)", topK)),
      h("div", { class: "chat" }, transcript, composition,
        field("pg-message", "Message", message),
        h("div", { class: "actions" }, send, stop,
          h("button", { type: "button", id: "export-curl", onclick: () => show("curl") }, "Export as curl"),
          h("button", { type: "button", id: "export-python", onclick: () => show("python") }, "Export as Python")),
        exported)),
  );
  message.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) e.target.form.requestSubmit(); });
}
