package shapes

import (
	"slices"
	"strconv"
	"strings"
)

// Expr is a symbolic integer: a polynomial with integer coefficients over atoms. An atom is a
// named symbol (a graph input's dim_param such as batch, or a fresh symbol standing for a size
// nothing proves) or an opaque function of other expressions (min, max, floor division). Two
// expressions are equal when their canonical forms are: Expr values are immutable and compare
// with Equal.
type Expr struct {
	terms []term // sorted by monomial key; no zero coefficients
	key   string
}

type term struct {
	coef  int64
	atoms []*atom // sorted by key, with repetition
	mono  string  // the atoms' keys joined by "*"; "" for the constant term
}

type atom struct {
	name string // a symbol, or the function for an application
	args []Expr
	key  string
}

// unknownPrefix starts the names of fresh symbols: sizes nothing proves.
const unknownPrefix = "?"

// Int returns the constant n.
func Int(n int64) Expr {
	if n == 0 {
		return Expr{key: "0"}
	}
	return mk([]term{{coef: n}})
}

// Sym returns the symbol name.
func Sym(name string) Expr { return fromAtom(&atom{name: name, key: name}) }

// unknown returns a fresh symbol; the name must be unique to what it stands for.
func unknown(name string) Expr { return Sym(unknownPrefix + name) }

func fromAtom(a *atom) Expr { return mk([]term{{coef: 1, atoms: []*atom{a}, mono: a.key}}) }

func apply(fn string, args ...Expr) Expr {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = a.key
	}
	return fromAtom(&atom{name: fn, args: args, key: fn + "(" + strings.Join(parts, ",") + ")"})
}

func mk(ts []term) Expr {
	slices.SortFunc(ts, func(a, b term) int { return strings.Compare(a.mono, b.mono) })
	out := ts[:0]
	for _, t := range ts {
		if n := len(out); n > 0 && out[n-1].mono == t.mono {
			out[n-1].coef += t.coef
			if out[n-1].coef == 0 {
				out = out[:n-1]
			}
			continue
		}
		if t.coef != 0 {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return Int(0)
	}
	var sb strings.Builder
	for i, t := range out {
		switch {
		case t.mono == "":
			if i > 0 && t.coef > 0 {
				sb.WriteByte('+')
			}
			sb.WriteString(strconv.FormatInt(t.coef, 10))
			continue
		case t.coef == -1:
			sb.WriteByte('-')
		case t.coef == 1:
			if i > 0 {
				sb.WriteByte('+')
			}
		default:
			if i > 0 && t.coef > 0 {
				sb.WriteByte('+')
			}
			sb.WriteString(strconv.FormatInt(t.coef, 10))
			sb.WriteByte('*')
		}
		sb.WriteString(t.mono)
	}
	return Expr{terms: out, key: sb.String()}
}

// String renders the expression, e.g. 12*batch or sequence_length+1.
func (e Expr) String() string {
	if e.key == "" {
		return "0"
	}
	return e.key
}

// Equal reports whether two expressions have the same canonical form.
func (e Expr) Equal(o Expr) bool { return e.String() == o.String() }

// Const returns the value of a constant expression.
func (e Expr) Const() (int64, bool) {
	switch {
	case len(e.terms) == 0:
		return 0, true
	case len(e.terms) == 1 && e.terms[0].mono == "":
		return e.terms[0].coef, true
	}
	return 0, false
}

// Symbol returns the name of a bare symbol (a dim_param or a fresh symbol), or false.
func (e Expr) Symbol() (string, bool) {
	if len(e.terms) != 1 || e.terms[0].coef != 1 || len(e.terms[0].atoms) != 1 || e.terms[0].atoms[0].args != nil {
		return "", false
	}
	return e.terms[0].atoms[0].name, true
}

// IsConst reports whether e is the constant n.
func (e Expr) IsConst(n int64) bool {
	v, ok := e.Const()
	return ok && v == n
}

// Unknown reports whether e involves a fresh symbol, i.e. a size nothing proves.
func (e Expr) Unknown() bool {
	for _, t := range e.terms {
		for _, a := range t.atoms {
			if strings.HasPrefix(a.name, unknownPrefix) {
				return true
			}
			for _, x := range a.args {
				if x.Unknown() {
					return true
				}
			}
		}
	}
	return false
}

// nonNegative reports whether e is provably >= 0: every coefficient is (atoms are sizes).
func (e Expr) nonNegative() bool {
	for _, t := range e.terms {
		if t.coef < 0 {
			return false
		}
	}
	return true
}

// Add returns a + b.
func Add(a, b Expr) Expr {
	return mk(append(append([]term(nil), a.terms...), b.terms...))
}

// Neg returns -a.
func Neg(a Expr) Expr {
	ts := make([]term, len(a.terms))
	for i, t := range a.terms {
		ts[i] = t
		ts[i].coef = -t.coef
	}
	return mk(ts)
}

// Sub returns a - b.
func Sub(a, b Expr) Expr { return Add(a, Neg(b)) }

// Mul returns a * b.
func Mul(a, b Expr) Expr {
	var ts []term
	for _, x := range a.terms {
		for _, y := range b.terms {
			atoms := append(append([]*atom(nil), x.atoms...), y.atoms...)
			slices.SortFunc(atoms, func(p, q *atom) int { return strings.Compare(p.key, q.key) })
			ts = append(ts, term{coef: x.coef * y.coef, atoms: atoms, mono: monoKey(atoms)})
		}
	}
	return mk(ts)
}

func monoKey(atoms []*atom) string {
	parts := make([]string, len(atoms))
	for i, a := range atoms {
		parts[i] = a.key
	}
	return strings.Join(parts, "*")
}

// Product returns the product of es (1 for none).
func Product(es ...Expr) Expr {
	p := Int(1)
	for _, e := range es {
		p = Mul(p, e)
	}
	return p
}

// DivExact returns a / b when b divides a exactly, as polynomials: 2*k+2*t over k+t is 2.
// ok is false otherwise.
func DivExact(a, b Expr) (Expr, bool) {
	if len(b.terms) == 0 {
		return Expr{}, false
	}
	lb := b.lead()
	q, r := Int(0), a
	for range 64 {
		if len(r.terms) == 0 {
			return q, true
		}
		lr := r.lead()
		if lr.coef%lb.coef != 0 {
			return Expr{}, false
		}
		rest, ok := removeAtoms(lr.atoms, lb.atoms)
		if !ok {
			return Expr{}, false
		}
		t := mk([]term{{coef: lr.coef / lb.coef, atoms: rest, mono: monoKey(rest)}})
		q, r = Add(q, t), Sub(r, Mul(t, b))
	}
	return Expr{}, false
}

// lead is the leading term: highest degree, then greatest monomial key. DivExact keeps
// a = q*b + r at every step, so a quotient it returns is right whatever the order; the order
// only decides how often an exact division is found.
func (e Expr) lead() term {
	best := e.terms[0]
	for _, t := range e.terms[1:] {
		if len(t.atoms) > len(best.atoms) || len(t.atoms) == len(best.atoms) && t.mono > best.mono {
			best = t
		}
	}
	return best
}

// removeAtoms removes the multiset sub from the sorted multiset all.
func removeAtoms(all, sub []*atom) ([]*atom, bool) {
	out := append([]*atom(nil), all...)
	for _, s := range sub {
		i := slices.IndexFunc(out, func(a *atom) bool { return a.key == s.key })
		if i < 0 {
			return nil, false
		}
		out = slices.Delete(out, i, i+1)
	}
	return out, true
}

// Div returns the quotient a / b of the sizes (integer division rounding down), exactly when
// it can be computed and as an opaque floor division otherwise.
func Div(a, b Expr) Expr {
	if x, ok := a.Const(); ok {
		if y, ok := b.Const(); ok && y != 0 {
			return Int(floorDiv(x, y))
		}
	}
	if q, ok := DivExact(a, b); ok {
		return q
	}
	return apply("floordiv", a, b)
}

func floorDiv(x, y int64) int64 {
	q := x / y
	if (x%y != 0) && ((x < 0) != (y < 0)) {
		q--
	}
	return q
}

// Min returns min(a, b): a constant when both are, one of them when provably smaller, or an
// opaque min.
func Min(a, b Expr) Expr { return extremum("min", a, b) }

// Max returns max(a, b) likewise.
func Max(a, b Expr) Expr { return extremum("max", a, b) }

// extremum is min(a, b) or max(a, b) (fn), decided when the order of a and b is provable.
func extremum(fn string, a, b Expr) Expr {
	x, xConst := a.Const()
	y, yConst := b.Const()
	var aSmaller bool
	switch {
	case a.Equal(b):
		return a
	case xConst && yConst:
		aSmaller = x <= y
	case Sub(b, a).nonNegative():
		aSmaller = true
	case Sub(a, b).nonNegative():
		aSmaller = false
	default:
		if a.String() > b.String() {
			a, b = b, a
		}
		return apply(fn, a, b)
	}
	if (fn == "min") == aSmaller {
		return a
	}
	return b
}

// minOf reports whether e is min(x, c) for a constant c >= 2, and returns x.
func (e Expr) minOf() (Expr, bool) {
	if len(e.terms) != 1 || e.terms[0].coef != 1 || len(e.terms[0].atoms) != 1 {
		return Expr{}, false
	}
	a := e.terms[0].atoms[0]
	if a.name != "min" || len(a.args) != 2 {
		return Expr{}, false
	}
	for i, x := range a.args {
		if c, ok := x.Const(); ok && c >= 2 {
			return a.args[1-i], true
		}
	}
	return Expr{}, false
}

// Eval evaluates e with the symbols bound to sizes; ok is false when a symbol is unbound.
func (e Expr) Eval(bind map[string]int64) (int64, bool) {
	var s int64
	for _, t := range e.terms {
		p := t.coef
		for _, a := range t.atoms {
			v, ok := a.eval(bind)
			if !ok {
				return 0, false
			}
			p *= v
		}
		s += p
	}
	return s, true
}

func (a *atom) eval(bind map[string]int64) (int64, bool) {
	if a.args == nil {
		v, ok := bind[a.name]
		return v, ok
	}
	xs := make([]int64, len(a.args))
	for i, x := range a.args {
		v, ok := x.Eval(bind)
		if !ok {
			return 0, false
		}
		xs[i] = v
	}
	switch a.name {
	case "min":
		return min(xs[0], xs[1]), true
	case "max":
		return max(xs[0], xs[1]), true
	case "floordiv":
		if xs[1] == 0 {
			return 0, false
		}
		return floorDiv(xs[0], xs[1]), true
	}
	return 0, false
}
