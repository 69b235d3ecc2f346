// Upstream's at-a-glance badges (reference §15.2), computed from the same counts the cards show.

export function connectivity(online, total) {
  if (!total) return { text: "No nodes", tone: "offline" };
  const ratio = online / total;
  if (ratio === 1) return { text: "Online", tone: "online" };
  if (ratio >= 0.7) return { text: "Partial", tone: "suspect" };
  if (ratio > 0) return { text: "Degraded", tone: "suspect" };
  return { text: "Offline", tone: "offline" };
}

export function processing(running, failed) {
  if (running > 0) return { text: "Running", tone: "running" };
  if (failed === 0) return { text: "Finished", tone: "finished" };
  return { text: "Idle", tone: "cancelled" };
}

export function systemHealth(failed, total) {
  if (failed === 0) return { text: "Healthy", tone: "online" };
  if (total && failed / total < 0.1) return { text: "Warning", tone: "suspect" };
  return { text: "Critical", tone: "offline" };
}
