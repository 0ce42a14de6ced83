package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// row is one figure of the table: the samples taken from each daemon (one
// per repetition) and the target govirtd should meet.
type row struct {
	section string
	figure  string
	unit    string
	higher  bool // higher is better
	l, g    []float64
	// target: ratio is govirtd/libvirtd; abs compares govirtd's median.
	tkind string // "", "ratio>=", "ratio<=", "abs<", "abs<="
	tval  float64
	svg   bool // also drawn in the picture
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func minMax(xs []float64) (float64, float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, x := range xs {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	return lo, hi
}

func (r *row) ratio() float64 {
	if len(r.l) == 0 || len(r.g) == 0 {
		return math.NaN()
	}
	return median(r.g) / median(r.l)
}

// met says whether the target holds; ok is false when it cannot be judged.
func (r *row) met() (met, ok bool) {
	switch r.tkind {
	case "ratio>=", "ratio<=":
		q := r.ratio()
		if math.IsNaN(q) || math.IsInf(q, 0) {
			return false, false
		}
		if r.tkind == "ratio>=" {
			return q >= r.tval, true
		}
		return q <= r.tval, true
	case "abs<", "abs<=":
		if len(r.g) == 0 {
			return false, false
		}
		m := median(r.g)
		if r.tkind == "abs<" {
			return m < r.tval, true
		}
		return m <= r.tval, true
	}
	return false, false
}

func (r *row) targetText() string {
	switch r.tkind {
	case "ratio>=":
		return fmt.Sprintf("≥ %g×", r.tval)
	case "ratio<=":
		return fmt.Sprintf("≤ %g×", r.tval)
	case "abs<":
		return fmt.Sprintf("govirtd < %s %s", fmtVal(r.tval, r.unit), r.unit)
	case "abs<=":
		return fmt.Sprintf("govirtd ≤ %s %s", fmtVal(r.tval, r.unit), r.unit)
	}
	return ""
}

func fmtVal(v float64, unit string) string {
	if math.IsNaN(v) {
		return "—"
	}
	switch {
	case unit == "ops/s" || unit == "calls/s":
		return fmt.Sprintf("%.0f", v)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func cell(xs []float64, unit string) string {
	if len(xs) == 0 {
		return "—"
	}
	m := median(xs)
	if len(xs) == 1 {
		return fmtVal(m, unit)
	}
	lo, hi := minMax(xs)
	return fmt.Sprintf("%s (%s–%s)", fmtVal(m, unit), fmtVal(lo, unit), fmtVal(hi, unit))
}

// machine describes where and how the figures were taken.
type machine struct {
	date, host, cpu, kernel string
	nproc                   int
	loadBefore, loadAfter   string
	reps                    int
	dur                     time.Duration
	libvirtd, qemu          string
	notes                   []string
	elapsed                 time.Duration
}

// grouped orders rows by section, sections in order of first appearance
// except Memory, which is measured at start and end but reads best last.
func grouped(rows []row) []row {
	rank := map[string]int{}
	for _, r := range rows {
		if _, ok := rank[r.section]; !ok {
			rank[r.section] = len(rank)
		}
	}
	rank["Memory"] = len(rank) + 1
	out := append([]row(nil), rows...)
	sort.SliceStable(out, func(i, j int) bool { return rank[out[i].section] < rank[out[j].section] })
	return out
}

func markdown(m machine, rows []row) string {
	rows = grouped(rows)
	var b strings.Builder
	fmt.Fprintf(&b, "Machine: %s, %d CPUs (%s), kernel %s, QEMU %s (TCG), libvirtd %s.  \n", m.host, m.nproc, m.cpu, m.kernel, m.qemu, m.libvirtd)
	fmt.Fprintf(&b, "Run: %s, %d repetitions per figure, A/B interleaved, RPC runs %s each; whole run %s; load average before %s, after %s.  \n", m.date, m.reps, m.dur, m.elapsed.Round(time.Second), m.loadBefore, m.loadAfter)
	b.WriteString("Cells: median (min–max over repetitions). Ratio = govirtd ÷ libvirtd, so > 1 is better for govirtd where higher is better and < 1 where lower is better.\n\n")
	for _, n := range m.notes {
		fmt.Fprintf(&b, "> %s\n", n)
	}
	if len(m.notes) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("| figure | unit | better | libvirtd | govirtd | ratio g/l | target | met |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	sec := ""
	for i := range rows {
		r := &rows[i]
		if r.section != sec {
			sec = r.section
			fmt.Fprintf(&b, "| **%s** | | | | | | | |\n", sec)
		}
		better := "lower"
		if r.higher {
			better = "higher"
		}
		ratio := "—"
		if q := r.ratio(); !math.IsNaN(q) && !math.IsInf(q, 0) {
			ratio = fmt.Sprintf("%.2f×", q)
		}
		metS := ""
		if r.tkind != "" {
			if ok, judged := r.met(); !judged {
				metS = "n/a"
			} else if ok {
				metS = "yes"
			} else {
				metS = "**no**"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.figure, r.unit, better, cell(r.l, r.unit), cell(r.g, r.unit), ratio, r.targetText(), metS)
	}
	return b.String()
}

func xmlEsc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&apos;", "\"", "&quot;").Replace(s)
}

// timeline is one client-driven managed migration: the five step times.
type timeline struct {
	kind  string
	steps []time.Duration
}

// svgReport draws, per selected row, the two medians as bars normalized to
// the larger of the two (values printed beside them), and below that one
// migration per implementation as a timeline of its five v3 steps on a
// common millisecond axis.
func svgReport(m machine, rows []row, tls []timeline) string {
	const (
		width  = 1100
		labelW = 430
		barMax = 520.0
		rowH   = 30
		top    = 70
		colL   = "#9a9a9a"
		colG   = "#2f6db5"
	)
	rows = grouped(rows)
	var sel []*row
	for i := range rows {
		if rows[i].svg {
			sel = append(sel, &rows[i])
		}
	}
	nsec := 0
	for i, r := range sel {
		if i == 0 || r.section != sel[i-1].section {
			nsec++
		}
	}
	tlTop := top + len(sel)*rowH + nsec*20 + 60
	height := tlTop + 60 + len(tls)*50 + 50
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="22" font-size="16" font-weight="bold">govirtd vs libvirtd %s — medians, bars normalized per row</text>`+"\n", xmlEsc(m.libvirtd))
	fmt.Fprintf(&b, `<text x="10" y="42" fill="#444">%s</text>`+"\n", xmlEsc(fmt.Sprintf("%s, %d CPUs, %s; %d reps; load %s → %s", m.host, m.nproc, m.date, m.reps, m.loadBefore, m.loadAfter)))
	fmt.Fprintf(&b, `<rect x="%d" y="50" width="12" height="10" fill="%s"/><text x="%d" y="59">libvirtd</text>`+"\n", labelW, colL, labelW+16)
	fmt.Fprintf(&b, `<rect x="%d" y="50" width="12" height="10" fill="%s"/><text x="%d" y="59">govirtd</text>`+"\n", labelW+90, colG, labelW+106)
	y := top - rowH
	for i, r := range sel {
		y += rowH
		if i == 0 || r.section != sel[i-1].section {
			fmt.Fprintf(&b, `<text x="10" y="%d" font-weight="bold" fill="#333">%s</text>`+"\n", y+14, xmlEsc(r.section))
			y += 20
		}
		better := "↓ better"
		if r.higher {
			better = "↑ better"
		}
		label := strings.ReplaceAll(r.figure, "`", "")
		fmt.Fprintf(&b, `<text x="20" y="%d" font-size="11">%s</text>`+"\n", y+14, xmlEsc(fmt.Sprintf("%s (%s, %s)", label, r.unit, better)))
		if q := r.ratio(); !math.IsNaN(q) && !math.IsInf(q, 0) {
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="end" fill="#444">g/l %.2f×</text>`+"\n", width-10, y+14, q)
		}
		lv, gv := median(r.l), median(r.g)
		mx := math.Max(nz(lv), nz(gv))
		for j, v := range []float64{lv, gv} {
			col := colL
			if j == 1 {
				col = colG
			}
			yy := y + 3 + j*12
			if math.IsNaN(v) {
				fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" fill="#888">not measured</text>`+"\n", labelW, yy+10)
				continue
			}
			w := 1.0
			if mx > 0 {
				w = math.Max(1, barMax*v/mx)
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="11" fill="%s"/>`+"\n", labelW, yy, w, col)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10">%s</text>`+"\n", float64(labelW)+w+4, yy+10, xmlEsc(fmtVal(v, r.unit)))
		}
	}
	// Timeline.
	fmt.Fprintf(&b, `<text x="10" y="%d" font-size="14" font-weight="bold">One client-managed live migration of the idle 128 MiB guest, step by step (go-libvirt, as virsh drives it)</text>`+"\n", tlTop)
	cols := []string{"#e4a11b", "#7b4fb0", "#2a9d5b", "#d1495b", "#555555"}
	for i, n := range stepNames {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", 10+i*150, tlTop+12, cols[i], 26+i*150, tlTop+21, xmlEsc(n+stepHint[i]))
	}
	var maxT time.Duration
	for _, t := range tls {
		var s time.Duration
		for _, d := range t.steps {
			s += d
		}
		maxT = max(maxT, s)
	}
	const tlX, tlW = 110, 800.0
	for i, t := range tls {
		y := tlTop + 40 + i*50
		var s time.Duration
		for _, d := range t.steps {
			s += d
		}
		fmt.Fprintf(&b, `<text x="10" y="%d">%s</text>`+"\n", y+14, xmlEsc(t.kind))
		fmt.Fprintf(&b, `<text x="10" y="%d" font-size="10" fill="#444">%s</text>`+"\n", y+28, xmlEsc(fmt.Sprintf("%.0f ms total", ms(s))))
		x := float64(tlX)
		for j, d := range t.steps {
			w := tlW * float64(d) / float64(max(maxT, 1))
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="20" fill="%s"><title>%s</title></rect>`+"\n", x, y, math.Max(w, 0.5), cols[j%len(cols)], xmlEsc(fmt.Sprintf("%s %.1f ms", stepNames[j], ms(d))))
			if w > 38 {
				fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" fill="white">%.0f ms</text>`+"\n", x+3, y+14, ms(d))
			}
			x += w
		}
		parts := make([]string, len(t.steps))
		for j, d := range t.steps {
			parts[j] = fmt.Sprintf("%s %.1f", stepNames[j], ms(d))
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" fill="#444">%s</text>`+"\n", tlX, y+33, xmlEsc(strings.Join(parts, " · ")+" ms"))
	}
	if len(tls) == 0 {
		fmt.Fprintf(&b, `<text x="10" y="%d" fill="#888">not measured</text>`+"\n", tlTop+50)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

var stepHint = []string{"", " (QEMU start)", " (transfer)", "", " (source teardown)"}

func nz(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
