-- Sends GET with `Authorization: SCHEME <token>` (SCHEME: DPoP unless set) and a fresh proof
-- per request, read from the file PROOFS (one per line, made by bench/dpop_proofs.rs). One
-- wrk thread (-t1): each proof is sent once. With SCHEME=Bearer and a Bearer token, the same
-- requests (the proof is ignored): the baseline, at the same cost to the load generator.
local proofs = {}
local token = os.getenv("TOKEN")
local scheme = os.getenv("SCHEME") or "DPoP"
for line in io.lines(os.getenv("PROOFS")) do proofs[#proofs + 1] = line end
local counter = 0
function request()
  counter = counter + 1
  local proof = proofs[((counter - 1) % #proofs) + 1]
  return wrk.format("GET", nil, { ["Authorization"] = scheme .. " " .. token, ["DPoP"] = proof })
end
