// The instance page's two small charts, drawn as SVG (no library, no inline style).

const SVG = "http://www.w3.org/2000/svg";

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  for (const child of children) el.append(child instanceof Node ? child : String(child));
  return el;
}

function tone(score) {
  if (score === null || score === undefined) return "#9aa0a6";
  if (score >= 90) return "#1e8e3e";
  if (score >= 70) return "#f9ab00";
  return "#d93025";
}

// One bar per factor: its score (0–100) and its weight in the total.
export function factorChart(factors) {
  const row = 28;
  const width = 460;
  const label = 120;
  const bar = 260;
  const svg = s("svg", {
    id: "factor-chart",
    class: "chart",
    viewBox: `0 0 ${width} ${row * factors.length + 4}`,
    role: "img",
    "aria-label": "health score factors",
  });
  factors.forEach((factor, i) => {
    const y = i * row + 4;
    const score = factor.score === null ? 0 : factor.score;
    svg.append(
      s("text", { x: 0, y: y + 15, class: "chart-label" }, `${factor.name} ×${factor.weight}`),
      s("rect", { x: label, y, width: bar, height: 18, rx: 3, fill: "#eceff1" }),
      s("rect", {
        x: label,
        y,
        width: (bar * score) / 100,
        height: 18,
        rx: 3,
        fill: tone(factor.score),
        class: "factor-bar",
        "data-factor": factor.name,
      }),
      s("text", { x: label + bar + 8, y: y + 15, class: "chart-value" },
        factor.score === null ? "—" : String(Math.round(score))),
      s("title", {}, factor.detail || factor.name),
    );
  });
  return svg;
}

// 24 hours of 5-minute buckets: availability as bars along the top, latency p95 as a line.
export function sparkline(buckets, bucketSeconds) {
  const width = 460;
  const height = 70;
  const end = Math.floor(Date.now() / 1000);
  const start = end - 24 * 3600;
  const x = (t) => ((t - start) / (end - start)) * width;
  const svg = s("svg", {
    id: "health-sparkline",
    class: "chart",
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": "availability and latency over 24 hours",
  });
  svg.append(s("rect", { x: 0, y: 0, width, height: 12, fill: "#eceff1" }));
  const step = (width * bucketSeconds) / (24 * 3600);
  const maxMs = Math.max(250, ...buckets.map((b) => b.p95Ms || 0));
  const points = [];
  for (const bucket of buckets) {
    const t = new Date(bucket.start).getTime() / 1000;
    if (t < start - bucketSeconds) continue;
    const up = bucket.probes ? 1 - bucket.failures / bucket.probes : null;
    if (up !== null) {
      svg.append(
        s("rect", {
          x: x(t),
          y: 0,
          width: Math.max(step, 1.5),
          height: 12,
          fill: up >= 0.999 ? "#1e8e3e" : up >= 0.95 ? "#f9ab00" : "#d93025",
          class: "availability-bucket",
        }),
      );
    }
    if (bucket.p95Ms !== null) {
      points.push(`${x(t + bucketSeconds / 2).toFixed(1)},${(height - 2 - ((height - 20) * bucket.p95Ms) / maxMs).toFixed(1)}`);
    }
  }
  if (points.length) {
    svg.append(s("polyline", { points: points.join(" "), fill: "none", stroke: "#714b67", "stroke-width": 1.5 }));
  }
  svg.append(
    s("text", { x: 0, y: height - 2, class: "chart-axis" }, "24 h ago"),
    s("text", { x: width, y: height - 2, class: "chart-axis", "text-anchor": "end" }, `now · p95 max ${Math.round(maxMs)} ms`),
  );
  return svg;
}
