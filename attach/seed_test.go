package attach_test

import (
	"fmt"
	"strconv"
)

func fmtSscan(quoted string, s *string) (int, error) {
	v, err := strconv.Unquote(quoted)
	if err != nil {
		return 0, fmt.Errorf("corpus value %.40q: %w", quoted, err)
	}
	*s = v
	return 1, nil
}
