# evidence-kit: `make demo` runs the tool on a sample case, `make test` runs every check.
# Each creates .venv and installs what it needs.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := demo
CASE   := sample_cases/leak-shop
CASE2  := sample_cases/phone-dump

.PHONY: demo test test-slow assurance lint schemas bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf $(DEMO)
	mkdir -m 700 $(DEMO)
	@echo "== a generated passphrase and an Ed25519 signing key (openssl), owner-only"
	umask 077 && $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(24))" > $(DEMO)/passphrase.txt
	umask 077 && openssl genpkey -algorithm ed25519 -out $(DEMO)/officer.pem
	openssl pkey -in $(DEMO)/officer.pem -pubout -out $(DEMO)/officer.pub.pem
	@echo "== the lab's keys: its age recipient goes to the stations, its signing key stays"
	$(BIN)/evidence-kit keys new lab7 --out $(DEMO)/lab-keys
	@echo "== field: acquire the seized folders into sealed, encrypted, signed bundles"
	$(BIN)/evidence-kit acquire $(CASE)/seized --case-file $(CASE)/case.toml \
	    --passphrase-file $(DEMO)/passphrase.txt --recipient $(DEMO)/lab-keys/lab7.age.pub \
	    --sign $(DEMO)/officer.pem --out $(DEMO)/leak-shop.zip --unattended --quiet
	$(BIN)/evidence-kit acquire $(CASE2)/seized --case-file $(CASE2)/case.toml \
	    --recipient $(DEMO)/lab-keys/lab7.age.pub --sign $(DEMO)/officer.pem \
	    --out $(DEMO)/phone-dump.zip --unattended --quiet
	@echo "== anyone, without a key: is the container the one the custody log recorded?"
	$(BIN)/evidence-kit verify $(DEMO)/leak-shop.zip
	@echo "== hand-over: the officer transfers the bundles to the lab"
	for b in leak-shop phone-dump; do $(BIN)/evidence-kit custody add $(DEMO)/$$b.zip \
	    --action transferred --actor "Officer Chen Jing" --to "Lab 7 intake" \
	    --location "Tianhe station" --sign $(DEMO)/officer.pem || exit 1; done
	@echo "== lab intake: verify every byte, record receipt (signed), register, index digests"
	$(BIN)/evidence-kit lab ingest $(DEMO)/leak-shop.zip $(DEMO)/phone-dump.zip \
	    --identity $(DEMO)/lab-keys/lab7.age --trust $(DEMO)/officer.pub.pem \
	    --sign $(DEMO)/lab-keys/lab7.sign.pem --actor "Lab 7 intake" \
	    --location "Provincial lab 7" --register $(DEMO)/lab/register.sqlite --quiet
	@echo "== which evidence do the two cases share? (the seller's export, renamed on the suspect's laptop)"
	$(BIN)/evidence-kit lab links --register $(DEMO)/lab/register.sqlite
	$(BIN)/evidence-kit lab find $(CASE)/seized/laptop-D/data/export/customers_gd_zj_js_20260106.csv \
	    --register $(DEMO)/lab/register.sqlite
	$(BIN)/evidence-kit custody show $(DEMO)/leak-shop.zip
	$(BIN)/evidence-kit custody receipt $(DEMO)/leak-shop.zip --out $(DEMO)/receipt.html
	@echo "== lab: every byte, every digest, both signers, and its own signed 'verified' event"
	$(BIN)/evidence-kit verify $(DEMO)/leak-shop.zip --passphrase-file $(DEMO)/passphrase.txt \
	    --trust $(DEMO)/officer.pub.pem --trust $(DEMO)/lab-keys/lab7.sign.pub.pem \
	    --sign $(DEMO)/lab-keys/lab7.sign.pem --actor "Lab 7, examiner Wu" --quiet
	@echo "== court: a printable report with the certification, and a kit to re-check it with stock tools"
	$(BIN)/evidence-kit report $(DEMO)/leak-shop.zip --out $(DEMO)/report.html \
	    --passphrase-file $(DEMO)/passphrase.txt --trust $(DEMO)/officer.pub.pem \
	    --trust $(DEMO)/lab-keys/lab7.sign.pub.pem --certifier "Wu Min, examiner, Lab 7" --quiet
	$(BIN)/evidence-kit export $(DEMO)/leak-shop.zip --format kit --out $(DEMO)/leak-shop.kit \
	    --passphrase-file $(DEMO)/passphrase.txt
	$(DEMO)/leak-shop.kit/VERIFY.sh
	@echo "== what the bundle holds"
	$(BIN)/evidence-kit inspect $(DEMO)/leak-shop.zip --passphrase-file $(DEMO)/passphrase.txt
	@echo "== the lab's shelf: every bundle under $(DEMO)/, re-verified two at a time (--jobs 2)"
	$(BIN)/evidence-kit lab verify-all $(DEMO) --identity $(DEMO)/lab-keys/lab7.age --jobs 2 --quiet
	@echo "== demo files are in $(DEMO)/ (the passphrase is in $(DEMO)/passphrase.txt; the report is $(DEMO)/report.html)"

lint: $(STAMP)
	$(BIN)/ruff check evidence_kit tests bench
	$(BIN)/ruff format --check evidence_kit tests bench
	$(BIN)/mypy evidence_kit
	$(BIN)/python -m evidence_kit.schemas --check

test: lint
	$(BIN)/pytest -m "not slow"

test-slow: $(STAMP)
	$(BIN)/pytest -m slow

assurance: $(STAMP)
	$(BIN)/pytest tests/assurance tests/test_verify_tampering.py -m "slow or not slow" \
	    --assurance-figures assurance-figures.json

schemas: $(STAMP)
	$(BIN)/python -m evidence_kit.schemas

bench: $(STAMP)
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/imaging.py
	$(BIN)/python bench/lab_verify_all.py

clean:
	rm -rf $(VENV) $(DEMO) .mypy_cache .ruff_cache .pytest_cache
