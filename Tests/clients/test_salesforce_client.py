"""simple-salesforce, unchanged, against the sandbox's Salesforce over HTTPS."""
import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound


@pytest.fixture(scope="module")
def sf(sandbox):
    return Salesforce(instance_url=sandbox["tls_url"], session_id="sandbox-salesforce-token", version="60.0")


def test_create_get_update_delete(sf):
    created = sf.Contact.create({"FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@example.com"})
    assert created["success"] is True and created["errors"] == []
    assert created["id"].startswith("003") and len(created["id"]) == 18
    assert sf.Contact.get(created["id"])["LastName"] == "Lovelace"
    assert sf.Contact.update(created["id"], {"Title": "Countess"}) == 204
    assert sf.Contact.get(created["id"])["Title"] == "Countess"
    assert sf.Contact.delete(created["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound) as deleted:
        sf.Contact.delete(created["id"])
    assert deleted.value.content[0]["errorCode"] == "ENTITY_IS_DELETED"


def test_validation_errors(sf):
    with pytest.raises(SalesforceMalformedRequest) as missing:
        sf.Contact.create({"FirstName": "No"})
    assert missing.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert missing.value.content[0]["fields"] == ["LastName"]
    with pytest.raises(SalesforceMalformedRequest) as unknown:
        sf.Contact.create({"LastName": "X", "Favourite_Spell": "Lumos"})
    assert unknown.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as with_id:
        sf.Contact.create({"LastName": "X", "Id": "003000000000001AAA"})
    assert with_id.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_upsert_by_external_id(sf):
    assert sf.Contact.upsert("External_Id__c/ext-1", {"LastName": "Hopper"}) == 201
    assert sf.Contact.upsert("External_Id__c/ext-1", {"LastName": "Hopper", "Title": "Rear Admiral"}) == 200
    sf.Contact.create({"LastName": "Other", "External_Id__c": "ext-2"})
    with pytest.raises(SalesforceMalformedRequest) as duplicate:
        sf.Contact.create({"LastName": "Twin", "External_Id__c": "ext-2"})
    assert duplicate.value.content[0]["errorCode"] == "DUPLICATE_VALUE"


def test_describe_and_limits(sf):
    described = sf.Contact.describe()
    fields = {field["name"]: field for field in described["fields"]}
    assert described["keyPrefix"] == "003"
    assert fields["LastName"]["nillable"] is False and fields["LastName"]["createable"] is True
    assert fields["External_Id__c"]["externalId"] is True
    assert fields["Id"]["createable"] is False
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] >= limits["DailyApiRequests"]["Remaining"] > 0
    assert sf.api_usage["api-usage"].total == limits["DailyApiRequests"]["Max"]


def test_composite_collections(sf):
    records = [{"attributes": {"type": "Contact"}, "LastName": "Batch-1"},
               {"attributes": {"type": "Account"}, "Name": "Batch Account"},
               {"attributes": {"type": "Contact"}, "FirstName": "No-Last-Name"}]
    results = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": records})
    assert [r["success"] for r in results] == [True, True, False]
    assert results[0]["id"].startswith("003") and results[1]["id"].startswith("001")
    assert results[2]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"

    rolled = sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": records})
    assert [r["success"] for r in rolled] == [False, False, False]
    assert rolled[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert rolled[2]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"

    upserted = sf.restful("composite/sobjects/Contact/External_Id__c", method="PATCH", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Contact"}, "External_Id__c": "ext-1", "Title": "Commodore"},
        {"attributes": {"type": "Contact"}, "External_Id__c": "ext-new", "LastName": "New"}]})
    assert [(r["success"], r["created"]) for r in upserted] == [(True, False), (True, True)]

    ids = ",".join(r["id"] for r in results[:2])
    deleted = sf.restful("composite/sobjects", method="DELETE", params={"ids": ids, "allOrNone": "false"})
    assert [r["success"] for r in deleted] == [True, True]


def test_bulk_api_2_upsert(sf):
    records = [{"External_Id__c": f"bulk-{n}", "LastName": f"Bulk {n}"} for n in range(25)]
    records.append({"External_Id__c": "bulk-bad", "FirstName": "No last name"})
    sf.bulk2.Contact.insert(records=[{"LastName": "Pre-existing", "External_Id__c": "bulk-0"}], wait=0.1)
    results = sf.bulk2.Contact.upsert(records=records, external_id_field="External_Id__c", wait=0.1)
    assert results[0]["numberRecordsProcessed"] == 26
    assert results[0]["numberRecordsFailed"] == 1
    job = results[0]["job_id"]
    successful = sf.bulk2.Contact.get_successful_records(job_id=job)
    lines = successful.strip().split("\n")
    header = lines[0].split(",")
    assert header[:2] == ['"sf__Id"', '"sf__Created"']
    assert sorted(header[2:]) == ['"External_Id__c"', '"FirstName"', '"LastName"']
    assert len(lines) == 26
    assert sum(1 for line in lines[1:] if '"false"' in line.split(",")[1]) == 1  # bulk-0 existed
    failed = sf.bulk2.Contact.get_failed_records(job_id=job)
    assert "REQUIRED_FIELD_MISSING" in failed and "bulk-bad" in failed


def test_custom_objects_and_fields_per_org(sandbox, sf):
    import json
    import urllib.request
    schema = {"objects": {
        "Contact": {"fields": ["Warmth__c"]},
        "Touchpoint__c": {"fields": ["Channel__c"], "required": ["Channel__c"], "externalIds": ["Touch_Id__c"]}}}
    urllib.request.urlopen(urllib.request.Request(
        sandbox["url"] + "/_sandbox/orgs/salesforce/acme", data=json.dumps(schema).encode(), method="PUT"))
    acme = Salesforce(instance_url=sandbox["tls_url"], session_id="acme-salesforce-token", version="60.0")

    assert acme.Contact.create({"LastName": "Warm", "Warmth__c": "hot"})["success"] is True
    with pytest.raises(SalesforceMalformedRequest) as undeclared:
        acme.Contact.create({"LastName": "Cold", "Undeclared__c": "x"})
    assert undeclared.value.content[0]["errorCode"] == "INVALID_FIELD"
    touchpoint = acme.Touchpoint__c.create({"Name": "First call", "Channel__c": "phone"})
    assert touchpoint["id"].startswith("a0")
    with pytest.raises(SalesforceMalformedRequest) as missing:
        acme.Touchpoint__c.create({"Name": "No channel"})
    assert missing.value.content[0]["fields"] == ["Channel__c"]
    assert acme.Touchpoint__c.upsert("Touch_Id__c/t-1", {"Name": "Upserted", "Channel__c": "email"}) == 201
    with pytest.raises(SalesforceResourceNotFound):
        acme.Meeting__c.create({"Name": "Not declared"})
    fields = {f["name"]: f for f in acme.Touchpoint__c.describe()["fields"]}
    assert fields["Touch_Id__c"]["externalId"] is True and "Channel__c" in fields
    # An org without a declared schema takes any custom name.
    assert sf.Contact.create({"LastName": "Anything", "Undeclared__c": "x"})["success"] is True
