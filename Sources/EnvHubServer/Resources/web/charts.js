// Small SVG line charts for figures sampled over time, drawn without a library.
import { h } from "./dom.js";

/**
 * A chart of `samples` ([{at: Date, value: number}]) with its title, the latest value and
 * the range, described in words for screen readers.
 */
export function lineChart(title, samples, unit = "") {
  const width = 300;
  const height = 80;
  // One sample is drawn as a flat line, so the chart is never blank.
  if (samples.length === 1) samples = [samples[0], samples[0]];
  const values = samples.map((sample) => sample.value);
  const max = Math.max(1, ...values);
  const latest = values.at(-1);
  const svg = h("svg:svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img",
    "aria-label": `${title}: ${samples.length ? `now ${latest}${unit}, highest ${Math.max(...values)}${unit} since ${samples[0].at.toLocaleTimeString()}` : "no samples yet"}` });
  svg.append(h("svg:line", { x1: 0, y1: height - 1, x2: width, y2: height - 1, stroke: "#d9dde5" }));
  if (samples.length) {
    const step = samples.length > 1 ? width / (samples.length - 1) : width;
    const points = values.map((value, index) => [samples.length > 1 ? index * step : width / 2, height - 2 - (value / max) * (height - 6)]);
    const line = points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
    const first = points[0][0].toFixed(1);
    const last = points.at(-1)[0].toFixed(1);
    svg.append(h("svg:polygon", { class: "area", points: `${first},${height} ${line} ${last},${height}` }));
    svg.append(h("svg:polyline", { class: "line", points: line }));
  }
  const since = samples.length ? samples[0].at.toLocaleTimeString() : "";
  return h("figure", { class: "card chart" },
    h("figcaption", {}, h("strong", {}, title), " ", h("span", { class: "muted" }, samples.length ? `now ${latest}${unit} · max ${Math.max(...values)}${unit} · since ${since}` : "waiting for the first sample")),
    svg);
}
