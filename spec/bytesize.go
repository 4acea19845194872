package spec

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// byteUnits are the suffixes a ByteSize quantity may carry: Kubernetes'
// binary (Ki..Ei) and decimal (k..E) suffixes. Lower-case "m" is refused on
// purpose: Kubernetes reads it as milli, docker as mebi.
var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"Pi", 1 << 50}, {"Ei", 1 << 60},
	{"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"P", 1e15}, {"E", 1e18},
}

// ParseByteSize reads "2Gi", "512M", "1.5Gi" or a plain number of bytes.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty size")
	}
	mult := int64(1)
	num := t
	for _, u := range byteUnits {
		if strings.HasSuffix(t, u.suffix) {
			mult, num = u.mult, strings.TrimSuffix(t, u.suffix)
			break
		}
	}
	if !isSizeNumber(num) {
		return 0, fmt.Errorf("%q is not a size (want bytes or a quantity such as 512Mi or 2Gi)", s)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("%q is not a size (want bytes or a quantity such as 512Mi or 2Gi)", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() {
		return 0, fmt.Errorf("%q is not a whole number of bytes", s)
	}
	if !r.Num().IsInt64() {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return ByteSize(r.Num().Int64()), nil
}

func parseByteSizeValue(raw any) (ByteSize, error) {
	switch x := raw.(type) {
	case nil:
		return 0, nil
	case string:
		return ParseByteSize(x)
	case json.Number:
		i, err := parseInteger(x)
		if err != nil {
			return 0, err
		}
		if i < 0 {
			return 0, fmt.Errorf("%d is below 0", i)
		}
		return ByteSize(i), nil
	}
	return 0, fmt.Errorf("expected a size (bytes or a quantity such as 2Gi), got %s", describe(raw))
}

// MarshalJSON writes the number of bytes: the canonical form the digest
// is computed over.
func (b ByteSize) MarshalJSON() ([]byte, error) { return []byte(strconv.FormatInt(int64(b), 10)), nil }

// UnmarshalJSON accepts bytes or a quantity string.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	var raw any
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	n, err := parseByteSizeValue(raw)
	if err != nil {
		return err
	}
	*b = n
	return nil
}

// String formats with the largest binary unit that divides the size
// exactly ("2Gi", "1536Mi", "1000").
func (b ByteSize) String() string {
	n := int64(b)
	if n == 0 {
		return "0"
	}
	for i := 5; i >= 0; i-- {
		u := byteUnits[i]
		if n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// approxGiB is used only for human summaries.
func (b ByteSize) approx() string {
	f := float64(b)
	switch {
	case f >= 1<<30:
		return strconv.FormatFloat(math.Round(f/(1<<30)*10)/10, 'f', -1, 64) + " GiB"
	case f >= 1<<20:
		return strconv.FormatFloat(math.Round(f/(1<<20)*10)/10, 'f', -1, 64) + " MiB"
	}
	return strconv.FormatInt(int64(b), 10) + " bytes"
}
