package devnode

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/sha3"
)

// chain speaks JSON-RPC to `geth --dev`, whose unlocked developer account
// signs eth_sendTransaction itself: no signing library, no go-ethereum in
// deaddrop's go.mod. ABI arguments are encoded by hand (address, uint256,
// bytes32, string are all that the deployment needs).
type chain struct {
	url   string
	from  string // the developer account
	nonce uint64 // the next nonce of from, once known
	known bool
}

func (c *chain) call(ctx context.Context, method string, params []any, out any) error {
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	var r struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("%s: HTTP %d, unreadable answer: %w", method, resp.StatusCode, err)
	}
	if r.Error != nil {
		return fmt.Errorf("%s: %s", method, r.Error.Message)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(r.Result, out)
}

func (c *chain) blockNumber(ctx context.Context) (uint64, error) {
	var h string
	if err := c.call(ctx, "eth_blockNumber", nil, &h); err != nil {
		return 0, err
	}
	n, ok := new(big.Int).SetString(strings.TrimPrefix(h, "0x"), 16)
	if !ok {
		return 0, fmt.Errorf("eth_blockNumber: %q", h)
	}
	return n.Uint64(), nil
}

// send submits a transaction from the developer account; to == "" deploys.
// It numbers the transactions itself: geth's own choice of nonce can repeat
// one still pending while a block is being sealed ("replacement transaction
// underpriced"), seen on a loaded machine.
func (c *chain) send(ctx context.Context, to string, data []byte, wei *big.Int) (string, error) {
	tx := map[string]string{"from": c.from, "data": "0x" + hex.EncodeToString(data)}
	if to != "" {
		tx["to"] = to
	}
	if wei != nil {
		tx["value"] = "0x" + wei.Text(16)
	}
	if !c.known {
		var n string
		if err := c.call(ctx, "eth_getTransactionCount", []any{c.from, "pending"}, &n); err != nil {
			return "", err
		}
		v, ok := new(big.Int).SetString(strings.TrimPrefix(n, "0x"), 16)
		if !ok {
			return "", fmt.Errorf("eth_getTransactionCount: %q", n)
		}
		c.nonce, c.known = v.Uint64(), true
	}
	tx["nonce"] = fmt.Sprintf("0x%x", c.nonce)
	var hash string
	if err := c.call(ctx, "eth_sendTransaction", []any{tx}, &hash); err != nil {
		c.known = false // ask again next time
		return "", err
	}
	c.nonce++
	return hash, nil
}

type receipt struct {
	Status          string `json:"status"`
	ContractAddress string `json:"contractAddress"`
	BlockNumber     string `json:"blockNumber"`
}

// wait returns the receipts of txs once all are mined (--dev.period 1: a
// block a second), failing on a reverted one. A fresh geth answers receipt
// queries with "transaction indexing is in progress" until its indexer has
// started (seen in CI); that is a "not yet", like a missing receipt.
func (c *chain) wait(ctx context.Context, txs ...string) ([]receipt, error) {
	out := make([]receipt, len(txs))
	for i, tx := range txs {
		for {
			var r *receipt
			err := c.call(ctx, "eth_getTransactionReceipt", []any{tx}, &r)
			if err != nil && !strings.Contains(err.Error(), "transaction indexing is in progress") {
				return nil, err
			}
			if err == nil && r != nil {
				if r.Status != "0x1" {
					return nil, fmt.Errorf("transaction %s reverted", tx)
				}
				out[i] = *r
				break
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("transaction %s not mined: %w", tx, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return out, nil
}

// do sends the transactions (they land in the same block) and waits for them.
func (c *chain) do(ctx context.Context, calls ...txCall) ([]receipt, error) {
	var hashes []string
	for _, tc := range calls {
		h, err := c.send(ctx, tc.to, tc.data, tc.wei)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tc.what, err)
		}
		hashes = append(hashes, h)
	}
	return c.wait(ctx, hashes...)
}

// deploy creates a contract and returns its address.
func (c *chain) deploy(ctx context.Context, what, bin string, args ...[]byte) (string, error) {
	code, err := hex.DecodeString(strings.TrimPrefix(bin, "0x"))
	if err != nil {
		return "", fmt.Errorf("%s bytecode: %w", what, err)
	}
	rs, err := c.do(ctx, txCall{what: "deploying " + what, data: append(code, bytes.Join(args, nil)...)})
	if err != nil {
		return "", err
	}
	return rs[0].ContractAddress, nil
}

// read does an eth_call and returns the result bytes.
func (c *chain) read(ctx context.Context, to string, data []byte) ([]byte, error) {
	var h string
	err := c.call(ctx, "eth_call", []any{map[string]string{"to": to, "data": "0x" + hex.EncodeToString(data)}, "latest"}, &h)
	if err != nil {
		return nil, err
	}
	return hex.DecodeString(strings.TrimPrefix(h, "0x"))
}

type txCall struct {
	what string
	to   string
	data []byte
	wei  *big.Int
}

// abiCall is the selector of signature followed by the encoded arguments.
func abiCall(signature string, args ...[]byte) []byte {
	h := sha3.NewLegacyKeccak256()
	h.Write([]byte(signature))
	return append(h.Sum(nil)[:4], bytes.Join(args, nil)...)
}

func word(b []byte) []byte {
	w := make([]byte, 32)
	copy(w[32-len(b):], b)
	return w
}

func abiAddress(a string) []byte {
	b, _ := hex.DecodeString(strings.TrimPrefix(strings.ToLower(a), "0x"))
	return word(b)
}

func abiUint(n *big.Int) []byte { return word(n.Bytes()) }

func abiUint64(n uint64) []byte { return abiUint(new(big.Int).SetUint64(n)) }

// abiStrings encodes a head of string arguments followed by static words, as
// the test token's constructor (string, string, uint256) takes them.
func abiStrings(strs []string, static ...[]byte) []byte {
	var head, tail []byte
	offset := 32 * (len(strs) + len(static))
	for _, s := range strs {
		head = append(head, abiUint64(uint64(offset+len(tail)))...)
		tail = append(tail, abiUint64(uint64(len(s)))...)
		padded := make([]byte, (len(s)+31)/32*32)
		copy(padded, s)
		tail = append(tail, padded...)
	}
	for _, w := range static {
		head = append(head, w...)
	}
	return append(head, tail...)
}

func ether(n int64, decimals int) *big.Int {
	return new(big.Int).Mul(big.NewInt(n), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(decimals)), nil))
}

// contracts are the storage incentives contracts a Bee node needs.
type contracts struct {
	Token, PostageStamp, PriceOracle, Staking, Redistribution string
	StartBlock                                                uint64
}

// postagePrice is the price per chunk per block set on the dev chain; the
// storage-incentives local deployment uses the same order of magnitude.
const postagePrice = 24000

// deployContracts deploys the contracts in the order of the
// storage-incentives repository's local deployment, grants the same roles
// and sets a price. bins maps contract names to their bytecode.
func deployContracts(ctx context.Context, c *chain, bins map[string]string, networkID uint64) (contracts, error) {
	var k contracts
	start, err := c.blockNumber(ctx)
	if err != nil {
		return k, err
	}
	k.StartBlock = start
	steps := []struct {
		name string
		dst  *string
		args func() [][]byte
	}{
		{"BzzToken", &k.Token, func() [][]byte {
			return [][]byte{abiStrings([]string{"Test BZZ", "tBZZ"}, abiUint(ether(1, 30)))}
		}},
		{"PostageStamp", &k.PostageStamp, func() [][]byte { return [][]byte{abiAddress(k.Token), abiUint64(16)} }},
		{"PriceOracle", &k.PriceOracle, func() [][]byte { return [][]byte{abiAddress(k.PostageStamp)} }},
		{"Staking", &k.Staking, func() [][]byte {
			return [][]byte{abiAddress(k.Token), abiUint64(networkID), abiAddress(k.PriceOracle)}
		}},
		{"Redistribution", &k.Redistribution, func() [][]byte {
			return [][]byte{abiAddress(k.Staking), abiAddress(k.PostageStamp), abiAddress(k.PriceOracle)}
		}},
	}
	for _, s := range steps {
		if bins[s.name] == "" {
			return k, fmt.Errorf("no bytecode for %s", s.name)
		}
		if *s.dst, err = c.deploy(ctx, s.name, bins[s.name], s.args()...); err != nil {
			return k, err
		}
	}
	role := func(contract, name string) ([]byte, error) {
		r, err := c.read(ctx, contract, abiCall(name+"()"))
		if err != nil || len(r) != 32 {
			return nil, fmt.Errorf("reading %s: %v (%d bytes)", name, err, len(r))
		}
		return r, nil
	}
	oracleRole, err := role(k.PostageStamp, "PRICE_ORACLE_ROLE")
	if err != nil {
		return k, err
	}
	redisPostage, err := role(k.PostageStamp, "REDISTRIBUTOR_ROLE")
	if err != nil {
		return k, err
	}
	redisStaking, err := role(k.Staking, "REDISTRIBUTOR_ROLE")
	if err != nil {
		return k, err
	}
	grant := "grantRole(bytes32,address)"
	if _, err := c.do(ctx,
		txCall{what: "PostageStamp: oracle role", to: k.PostageStamp, data: abiCall(grant, oracleRole, abiAddress(k.PriceOracle))},
		txCall{what: "PostageStamp: redistributor role", to: k.PostageStamp, data: abiCall(grant, redisPostage, abiAddress(k.Redistribution))},
		txCall{what: "Staking: redistributor role", to: k.Staking, data: abiCall(grant, redisStaking, abiAddress(k.Redistribution))},
		// The deployer sets the price directly; the oracle would only
		// adjust it in redistribution rounds, which are off.
		txCall{what: "PostageStamp: deployer as price oracle", to: k.PostageStamp, data: abiCall(grant, oracleRole, abiAddress(c.from))},
	); err != nil {
		return k, err
	}
	_, err = c.do(ctx, txCall{what: "PostageStamp: price", to: k.PostageStamp, data: abiCall("setPrice(uint256)", abiUint64(postagePrice))})
	return k, err
}

// fund sends ETH (for gas) and test BZZ (for postage) to each address.
func fund(ctx context.Context, c *chain, token string, addrs []string) error {
	var calls []txCall
	for _, a := range addrs {
		calls = append(calls,
			txCall{what: "ETH to " + a, to: a, wei: ether(100, 18)},
			txCall{what: "BZZ to " + a, to: token, data: abiCall("transfer(address,uint256)", abiAddress(a), abiUint(ether(1, 24)))})
	}
	_, err := c.do(ctx, calls...)
	return err
}
