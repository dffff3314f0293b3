"""hubspot-api-client, unchanged, against the sandbox's HubSpot."""
import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import (ApiException, BatchInputSimplePublicObjectBatchInputForCreate,
                                  BatchInputSimplePublicObjectBatchInputUpsert, BatchInputSimplePublicObjectBatchInput,
                                  BatchInputSimplePublicObjectId, SimplePublicObjectBatchInputForCreate,
                                  SimplePublicObjectBatchInputUpsert, SimplePublicObjectBatchInput, SimplePublicObjectId,
                                  SimplePublicObjectInput, SimplePublicObjectInputForCreate)


@pytest.fixture(scope="module")
def client(sandbox):
    return HubSpot(access_token="sandbox-hubspot-token", host=sandbox["url"])


def test_create_get_update_archive(client):
    contacts = client.crm.contacts.basic_api
    created = contacts.create(SimplePublicObjectInputForCreate(properties={"email": "grace@example.com", "firstname": "Grace"}))
    assert created.properties["firstname"] == "Grace" and created.id
    assert contacts.get_by_id(created.id).properties["email"] == "grace@example.com"
    updated = contacts.update(created.id, SimplePublicObjectInput(properties={"lastname": "Hopper"}))
    assert updated.properties["lastname"] == "Hopper"
    by_email = contacts.update("grace@example.com", SimplePublicObjectInput(properties={"jobtitle": "Admiral"}), id_property="email")
    assert by_email.id == created.id and by_email.properties["jobtitle"] == "Admiral"
    contacts.archive(created.id)
    with pytest.raises(ApiException) as gone:
        contacts.get_by_id(created.id)
    assert gone.value.status == 404


def test_errors(client):
    contacts = client.crm.contacts.basic_api
    with pytest.raises(ApiException) as invalid:
        contacts.create(SimplePublicObjectInputForCreate(properties={"favourite_spell": "Lumos"}))
    assert invalid.value.status == 400 and "PROPERTY_DOESNT_EXIST" in invalid.value.body
    first = contacts.create(SimplePublicObjectInputForCreate(properties={"email": "twin@example.com"}))
    with pytest.raises(ApiException) as conflict:
        contacts.create(SimplePublicObjectInputForCreate(properties={"email": "twin@example.com"}))
    assert conflict.value.status == 409 and f"Existing ID: {first.id}" in conflict.value.body


def test_batches(client):
    batch = client.crm.contacts.batch_api
    created = batch.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
        SimplePublicObjectBatchInputForCreate(properties={"email": f"batch{n}@example.com"}) for n in range(3)]))
    assert created.status == "COMPLETE" and len(created.results) == 3
    ids = [result.id for result in created.results]
    updated = batch.update(BatchInputSimplePublicObjectBatchInput(inputs=[
        SimplePublicObjectBatchInput(id=id, properties={"lifecyclestage": "lead"}) for id in ids]))
    assert all(result.properties["lifecyclestage"] == "lead" for result in updated.results)
    upserted = batch.upsert(BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
        SimplePublicObjectBatchInputUpsert(id="batch0@example.com", id_property="email", properties={"firstname": "Zero"}),
        SimplePublicObjectBatchInputUpsert(id="fresh@example.com", id_property="email", properties={"firstname": "Fresh"})]))
    assert sorted((result.properties["email"], result.new) for result in upserted.results) == [
        ("batch0@example.com", False), ("fresh@example.com", True)]
    batch.archive(BatchInputSimplePublicObjectId(inputs=[SimplePublicObjectId(id=id) for id in ids]))
    with pytest.raises(ApiException) as too_many:
        batch.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
            SimplePublicObjectBatchInputForCreate(properties={"firstname": str(n)}) for n in range(101)]))
    assert too_many.value.status == 400


def test_properties_associations_and_custom_objects(client):
    names = {p.name for p in client.crm.properties.core_api.get_all("contacts").results}
    assert {"email", "firstname", "lastname"} <= names
    contact = client.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "linked@example.com"}))
    from hubspot.crm.companies import SimplePublicObjectInputForCreate as CompanyInput
    company = client.crm.companies.basic_api.create(CompanyInput(properties={"name": "Linked Inc"}))
    client.crm.associations.v4.basic_api.create_default("contacts", contact.id, "companies", company.id)
    listed = client.crm.associations.v4.basic_api.get_page("contacts", contact.id, "companies")
    assert [str(result.to_object_id) for result in listed.results] == [company.id]
    from hubspot.crm.objects import SimplePublicObjectInputForCreate as ObjectInput
    pet = client.crm.objects.basic_api.create("p_pets", ObjectInput(properties={"name": "Crookshanks", "species": "cat"}))
    assert client.crm.objects.basic_api.get_by_id("2-1001", pet.id, properties=["name"]).properties["name"] == "Crookshanks"
