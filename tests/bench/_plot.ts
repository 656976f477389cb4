/**
 * Line plots as standalone SVG, for the benches' results: one or more panels, each with a log
 * or linear x axis, a log or linear y axis, and one line per series with a legend. No
 * dependencies; the file opens in any browser and converts to PNG with any SVG tool.
 * @module
 */

export interface Series {
  name: string;
  points: [number, number][];
  dashed?: boolean;
}

export interface Panel {
  title: string;
  xLabel: string;
  yLabel: string;
  xLog?: boolean;
  yLog?: boolean;
  series: Series[];
}

const COLORS = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#9467bd",
  "#ff7f0e",
  "#17becf",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
];
const W = 520, H = 360, M = { l: 64, r: 16, t: 34, b: 46 };

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const fmt = (v: number) =>
  Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(0) : String(+v.toPrecision(3));

function ticks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
    return out.filter((t) => t >= lo * 0.999 && t <= hi * 1.001);
  }
  const step = 10 ** Math.floor(Math.log10((hi - lo) / 4 || 1));
  const k = [1, 2, 5, 10].find((m) => (hi - lo) / (step * m) <= 6) ?? 10;
  const out: number[] = [];
  for (let t = Math.ceil(lo / (step * k)) * step * k; t <= hi + 1e-9; t += step * k) out.push(t);
  return out;
}

function panelSvg(p: Panel, ox: number): string {
  const pts = p.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const pos = (v: number, log?: boolean) => (log ? Math.log10(Math.max(v, 1e-12)) : v);
  let [xlo, xhi] = [Math.min(...pts.map((q) => q[0])), Math.max(...pts.map((q) => q[0]))];
  let [ylo, yhi] = [Math.min(...pts.map((q) => q[1])), Math.max(...pts.map((q) => q[1]))];
  if (p.yLog) [ylo, yhi] = [10 ** Math.floor(Math.log10(ylo)), 10 ** Math.ceil(Math.log10(yhi))];
  else [ylo, yhi] = [Math.min(0, ylo), yhi * 1.05];
  if (p.xLog) [xlo, xhi] = [10 ** Math.floor(Math.log10(xlo)), 10 ** Math.ceil(Math.log10(xhi))];
  if (xhi === xlo) xhi = xlo + 1;
  if (yhi === ylo) yhi = ylo + 1;
  const sx = (x: number) =>
    ox + M.l +
    ((pos(x, p.xLog) - pos(xlo, p.xLog)) / (pos(xhi, p.xLog) - pos(xlo, p.xLog))) * (W - M.l - M.r);
  const sy = (y: number) =>
    M.t + (1 - (pos(y, p.yLog) - pos(ylo, p.yLog)) / (pos(yhi, p.yLog) - pos(ylo, p.yLog))) * (H - M.t - M.b);
  const out: string[] = [];
  out.push(`<text x="${ox + W / 2}" y="20" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`);
  for (const t of ticks(xlo, xhi, !!p.xLog)) {
    out.push(`<line x1="${sx(t)}" x2="${sx(t)}" y1="${M.t}" y2="${H - M.b}" stroke="#eee"/>`);
    out.push(`<text x="${sx(t)}" y="${H - M.b + 16}" text-anchor="middle">${fmt(t)}</text>`);
  }
  for (const t of ticks(ylo, yhi, !!p.yLog)) {
    out.push(`<line x1="${ox + M.l}" x2="${ox + W - M.r}" y1="${sy(t)}" y2="${sy(t)}" stroke="#eee"/>`);
    out.push(`<text x="${ox + M.l - 6}" y="${sy(t) + 4}" text-anchor="end">${fmt(t)}</text>`);
  }
  out.push(
    `<rect x="${ox + M.l}" y="${M.t}" width="${W - M.l - M.r}" height="${
      H - M.t - M.b
    }" fill="none" stroke="#333"/>`,
  );
  out.push(`<text x="${ox + W / 2}" y="${H - 8}" text-anchor="middle">${esc(p.xLabel)}</text>`);
  out.push(
    `<text transform="translate(${ox + 16},${H / 2}) rotate(-90)" text-anchor="middle">${
      esc(p.yLabel)
    }</text>`,
  );
  p.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const d = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
      .map(([x, y], j) => `${j ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join("");
    out.push(
      `<path d="${d}" fill="none" stroke="${c}" stroke-width="2"${
        s.dashed ? ' stroke-dasharray="6,4"' : ""
      }/>`,
    );
    for (const [x, y] of s.points) {
      if (Number.isFinite(y)) out.push(`<circle cx="${sx(x)}" cy="${sy(y)}" r="3" fill="${c}"/>`);
    }
    const ly = M.t + 10 + i * 15;
    out.push(
      `<line x1="${ox + W - M.r - 150}" x2="${
        ox + W - M.r - 130
      }" y1="${ly}" y2="${ly}" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6,4"' : ""}/>`,
    );
    out.push(`<text x="${ox + W - M.r - 126}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  return out.join("\n");
}

/** One SVG document holding `panels` side by side. */
export function linePlotSvg(panels: Panel[]): string {
  const width = W * panels.length;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${H}" fill="white"/>`,
    ...panels.map((p, i) => panelSvg(p, i * W)),
    "</svg>",
  ].join("\n");
}
