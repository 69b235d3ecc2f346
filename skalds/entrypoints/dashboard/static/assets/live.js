// The two SSE streams (/api/events/tasks and /api/events/skalds), shared by every page.
//
// The browser's EventSource reconnects by itself after a dropped connection and sends Last-Event-ID, so the
// server replays what was missed. When the server refuses a stream outright (the source is CLOSED, e.g. a
// 401), we open a new one after a backoff. Whenever a stream opens (the first time too), or the server says
// it dropped frames for us, listeners get a "resync" and re-read their REST data once: frames are deltas.
//
// Frames of Skalds' own kinds (task_status, alerts, ...) arrive as SSE events named "skalds"; the unnamed
// ones are upstream's kinds, kept readable for upstream's dashboard. A lifecycle change comes as both a
// task_status and upstream's copy of it (a task_heartbeat with data.change): we take the task_status.

import { apiKey } from "./api.js";

const STREAMS = ["tasks", "skalds"];
const BACKOFF_MS = [1000, 2000, 4000, 8000, 16000, 30000];

export class Live {
  constructor() {
    this.frameListeners = new Set();
    this.stateListeners = new Set();
    this.resyncListeners = new Set();
    this.streams = {};
    this.framesSeen = 0;
  }

  start() {
    for (const name of STREAMS) this.open(name, 0);
  }

  /** Close and reopen both streams (the API key changed). */
  restart() {
    for (const stream of Object.values(this.streams)) {
      clearTimeout(stream.timer);
      stream.source?.close();
    }
    this.start();
  }

  open(name, attempts) {
    const key = apiKey();
    const url = `/api/events/${name}${key ? `?apiKey=${encodeURIComponent(key)}` : ""}`;
    const source = new EventSource(url);
    const stream = { name, source, state: "connecting", attempts, troubled: attempts > 0, timer: null };
    this.streams[name] = stream;
    source.onopen = () => {
      const resumed = stream.troubled;
      Object.assign(stream, { state: "open", attempts: 0, troubled: false });
      this.emitState();
      // the first open too: what changed between the page's first REST read and this moment came as
      // frames nobody received (a task that failed while the page loaded stayed "Assigning")
      this.emitResync(resumed ? `${name} stream reconnected` : `${name} stream opened`);
    };
    source.onmessage = (message) => this.receive(name, message.data);
    source.addEventListener("skalds", (message) => this.receive(name, message.data));
    source.onerror = () => {
      stream.troubled = true;
      if (source.readyState === EventSource.CLOSED) {
        const wait = BACKOFF_MS[Math.min(stream.attempts, BACKOFF_MS.length - 1)];
        Object.assign(stream, { state: "closed", retryAt: Date.now() + wait });
        stream.timer = setTimeout(() => this.open(name, stream.attempts + 1), wait);
      } else {
        stream.state = "reconnecting";
      }
      this.emitState();
    };
    this.emitState();
  }

  receive(stream, data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame.type === "connection") return;
    if (frame.type === "frames_dropped") return this.emitResync(`${frame.data?.count} frames dropped`);
    if (frame.type === "task_heartbeat" && frame.data?.change) return; // upstream's copy of a task_status
    this.framesSeen += 1;
    frame.stream = stream;
    for (const listener of this.frameListeners) listener(frame);
  }

  /** One word for the whole connection: live, connecting, reconnecting or disconnected. */
  state() {
    const states = Object.values(this.streams).map((s) => s.state);
    if (states.length && states.every((s) => s === "open")) return "live";
    if (states.includes("closed")) return "disconnected";
    if (states.includes("reconnecting")) return "reconnecting";
    return "connecting";
  }

  onFrame(listener) {
    this.frameListeners.add(listener);
    return () => this.frameListeners.delete(listener);
  }

  onState(listener) {
    this.stateListeners.add(listener);
    listener(this.state(), this.streams);
    return () => this.stateListeners.delete(listener);
  }

  onResync(listener) {
    this.resyncListeners.add(listener);
    return () => this.resyncListeners.delete(listener);
  }

  emitState() {
    const state = this.state();
    for (const listener of this.stateListeners) listener(state, this.streams);
  }

  emitResync(reason) {
    for (const listener of this.resyncListeners) listener(reason);
  }
}
